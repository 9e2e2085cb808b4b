// Package events is xd's event exchange: an in-process publish/subscribe
// hub (Exchange) that never blocks its publishers, the topic names xd and
// its shims use, and the receiving end of containerd's events ttrpc service
// (containerd.services.events.ttrpc.v1.Events/Forward), which shims call on
// $TTRPC_ADDRESS to report task events. Forwarded envelopes are decoded into
// xd's own event message (proto/xd/v1 Event).
//
// Ordering: events are delivered to each subscriber in the order Publish was
// called. A shim sends its events in order (create < start < exit < delete),
// but one that failed to reach xd retries them later, so after a failure
// an event may arrive out of order; State and Wait on the shim are the
// source of truth, events only report.
//
// Internal to xstack; no API stability.
package events
