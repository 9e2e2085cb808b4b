package events

// Task topics: the ones containerd's shims publish (containerd's
// runtime/events.go), forwarded to xd over ttrpc.
const (
	TopicTaskCreate       = "/tasks/create"
	TopicTaskStart        = "/tasks/start"
	TopicTaskExit         = "/tasks/exit"
	TopicTaskDelete       = "/tasks/delete"
	TopicTaskExecAdded    = "/tasks/exec-added"
	TopicTaskExecStarted  = "/tasks/exec-started"
	TopicTaskPaused       = "/tasks/paused"
	TopicTaskResumed      = "/tasks/resumed"
	TopicTaskOOM          = "/tasks/oom"
	TopicTaskCheckpointed = "/tasks/checkpointed"
)

// Topics xd publishes itself.
const (
	TopicContainerCreate = "/containers/create"
	TopicContainerDelete = "/containers/delete"
	TopicImageCreate     = "/images/create"
	TopicImageUpdate     = "/images/update"
	TopicImageDelete     = "/images/delete"
)
