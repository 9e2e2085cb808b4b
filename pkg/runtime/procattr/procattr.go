package procattr

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther:    unix.SCHED_NORMAL,
	specs.SchedFIFO:     unix.SCHED_FIFO,
	specs.SchedRR:       unix.SCHED_RR,
	specs.SchedBatch:    unix.SCHED_BATCH,
	specs.SchedIdle:     unix.SCHED_IDLE,
	specs.SchedDeadline: unix.SCHED_DEADLINE,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork:  unix.SCHED_FLAG_RESET_ON_FORK,
	specs.SchedFlagReclaim:      unix.SCHED_FLAG_RECLAIM,
	specs.SchedFlagDLOverrun:    unix.SCHED_FLAG_DL_OVERRUN,
	specs.SchedFlagKeepPolicy:   unix.SCHED_FLAG_KEEP_POLICY,
	specs.SchedFlagKeepParams:   unix.SCHED_FLAG_KEEP_PARAMS,
	specs.SchedFlagUtilClampMin: unix.SCHED_FLAG_UTIL_CLAMP_MIN,
	specs.SchedFlagUtilClampMax: unix.SCHED_FLAG_UTIL_CLAMP_MAX,
}

// SchedAttr converts process.scheduler to sched_setattr's argument,
// checking the ranges the kernel would otherwise reject with a bare EINVAL.
func SchedAttr(s *specs.Scheduler) (*unix.SchedAttr, error) {
	policy, ok := schedPolicies[s.Policy]
	if !ok {
		if s.Policy == specs.SchedISO {
			return nil, fmt.Errorf("process.scheduler.policy: SCHED_ISO is not a policy of mainline Linux")
		}
		return nil, fmt.Errorf("process.scheduler.policy: unknown policy %q", s.Policy)
	}
	attr := &unix.SchedAttr{Policy: policy, Nice: s.Nice, Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period}
	for _, f := range s.Flags {
		v, ok := schedFlags[f]
		if !ok {
			return nil, fmt.Errorf("process.scheduler.flags: unknown flag %q", f)
		}
		attr.Flags |= v
	}
	if s.Nice < -20 || s.Nice > 19 {
		return nil, fmt.Errorf("process.scheduler.nice: %d is outside [-20, 19]", s.Nice)
	}
	realtime := policy == unix.SCHED_FIFO || policy == unix.SCHED_RR
	switch {
	case realtime && (s.Priority < 1 || s.Priority > 99):
		return nil, fmt.Errorf("process.scheduler.priority: %s needs a priority in [1, 99], not %d", s.Policy, s.Priority)
	case !realtime && s.Priority != 0:
		return nil, fmt.Errorf("process.scheduler.priority: %s takes no priority (got %d)", s.Policy, s.Priority)
	}
	attr.Priority = uint32(s.Priority)
	if policy == unix.SCHED_DEADLINE {
		period := s.Period
		if period == 0 {
			period = s.Deadline
		}
		if s.Runtime == 0 || s.Runtime > s.Deadline || s.Deadline > period {
			return nil, fmt.Errorf("process.scheduler: SCHED_DEADLINE needs 0 < runtime (%d) <= deadline (%d) <= period (%d)", s.Runtime, s.Deadline, period)
		}
	} else if s.Runtime != 0 || s.Deadline != 0 || s.Period != 0 {
		return nil, fmt.Errorf("process.scheduler: runtime, deadline and period are for SCHED_DEADLINE only, not %s", s.Policy)
	}
	return attr, nil
}

var ioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT:   1,
	specs.IOPRIO_CLASS_BE:   2,
	specs.IOPRIO_CLASS_IDLE: 3,
}

// ioprioClassShift is where the class sits in an ioprio value (linux/ioprio.h).
const ioprioClassShift = 13

// IOPrio converts process.ioPriority to ioprio_set's value.
func IOPrio(p *specs.LinuxIOPriority) (int, error) {
	class, ok := ioClasses[p.Class]
	if !ok {
		return 0, fmt.Errorf("process.ioPriority.class: unknown class %q", p.Class)
	}
	if p.Priority < 0 || p.Priority > 7 {
		return 0, fmt.Errorf("process.ioPriority.priority: %d is outside [0, 7]", p.Priority)
	}
	return class<<ioprioClassShift | p.Priority, nil
}

// Personality domains (linux/personality.h).
var personalities = map[specs.LinuxPersonalityDomain]uint{
	specs.PerLinux:   0x0000,
	specs.PerLinux32: 0x0008,
}

// Personality converts linux.personality to personality(2)'s argument.
// The spec defines no flags yet, so any flag is refused rather than guessed.
func Personality(p *specs.LinuxPersonality) (uint, error) {
	v, ok := personalities[p.Domain]
	if !ok {
		return 0, fmt.Errorf("linux.personality.domain: unknown domain %q (LINUX or LINUX32)", p.Domain)
	}
	if len(p.Flags) > 0 {
		return 0, fmt.Errorf("linux.personality.flags: %q: the runtime spec defines no personality flags", p.Flags)
	}
	return v, nil
}

// Apply sets the calling process's scheduler, I/O priority and
// personality, each only when given. It runs in the init right before
// execve, after the checks above passed in the parent.
func Apply(sched *specs.Scheduler, io *specs.LinuxIOPriority, pers *specs.LinuxPersonality) error {
	if pers != nil {
		v, err := Personality(pers)
		if err != nil {
			return err
		}
		if _, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(v), 0, 0); errno != 0 {
			return fmt.Errorf("set personality %s: %w", pers.Domain, errno)
		}
	}
	if io != nil {
		v, err := IOPrio(io)
		if err != nil {
			return err
		}
		const whoProcess = 1 // IOPRIO_WHO_PROCESS
		if _, _, errno := unix.RawSyscall(unix.SYS_IOPRIO_SET, whoProcess, 0, uintptr(v)); errno != 0 {
			return fmt.Errorf("set I/O priority %s/%d: %w", io.Class, io.Priority, errno)
		}
	}
	if sched != nil {
		attr, err := SchedAttr(sched)
		if err != nil {
			return err
		}
		if err := unix.SchedSetAttr(0, attr, 0); err != nil {
			return fmt.Errorf("set scheduler %s: %w", sched.Policy, err)
		}
	}
	return nil
}
