package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/maintenance"
	"github.com/mesos/mesos-go/api/v1/lib/master"
	"github.com/mesos/mesos-go/api/v1/lib/master/calls"
)

// A maintenance window announces a batch's machines to the frameworks:
// the master puts machines of a scheduled window in DRAINING mode and
// sends inverse offers for their resources (Mesos' maintenance
// primitives). The tool never starts maintenance (which would take the
// agents DOWN); it schedules the window before a batch and removes it
// after.

// machineIDs are the Mesos machine ids of a batch's agents.
func machineIDs(batch []planned) []mesos.MachineID {
	out := make([]mesos.MachineID, 0, len(batch))
	for _, pl := range batch {
		h, ip := pl.agent.Hostname, pl.agent.IP
		out = append(out, mesos.MachineID{Hostname: &h, IP: &ip})
	}
	return out
}

func sameMachine(a, b mesos.MachineID) bool {
	return a.GetHostname() == b.GetHostname() && a.GetIP() == b.GetIP()
}

// getSchedule reads the master's maintenance schedule.
func (m *masterClient) getSchedule(ctx context.Context) (maintenance.Schedule, error) {
	r, err := m.do(ctx, calls.GetMaintenanceSchedule(), master.Response_GET_MAINTENANCE_SCHEDULE)
	if err != nil {
		return maintenance.Schedule{}, err
	}
	if r.GetMaintenanceSchedule == nil {
		return maintenance.Schedule{}, nil
	}
	return r.GetMaintenanceSchedule.Schedule, nil
}

// checkWindows refuses a plan when one of its machines is already in a
// maintenance window.
func (m *masterClient) checkWindows(ctx context.Context, p *Plan) error {
	s, err := m.getSchedule(ctx)
	if err != nil {
		return err
	}
	for _, b := range p.Batches {
		if err := inWindow(s, machineIDs(b)); err != nil {
			return err
		}
	}
	return nil
}

// inWindow reports a machine of machines that is in a window of s.
func inWindow(s maintenance.Schedule, machines []mesos.MachineID) error {
	for _, w := range s.Windows {
		for _, have := range w.MachineIDs {
			for _, mid := range machines {
				if sameMachine(have, mid) {
					return fmt.Errorf("machine %s (%s) is already in a maintenance window; refusing to change it", mid.GetHostname(), mid.GetIP())
				}
			}
		}
	}
	return nil
}

// scheduleWindow adds a window of length d starting now for machines,
// keeping the windows already scheduled. A machine already in a window is
// refused: the master allows one window per machine, and the operator's
// own window must not be replaced.
func (m *masterClient) scheduleWindow(ctx context.Context, machines []mesos.MachineID, d time.Duration) (maintenance.Window, error) {
	s, err := m.getSchedule(ctx)
	if err != nil {
		return maintenance.Window{}, err
	}
	if err := inWindow(s, machines); err != nil {
		return maintenance.Window{}, err
	}
	ns := int64(d)
	w := maintenance.Window{MachineIDs: machines, Unavailability: mesos.Unavailability{
		Start: mesos.TimeInfo{Nanoseconds: time.Now().UnixNano()}, Duration: &mesos.DurationInfo{Nanoseconds: ns}}}
	s.Windows = append(s.Windows, w)
	if _, err := m.do(ctx, calls.UpdateMaintenanceSchedule(s), master.Response_UNKNOWN); err != nil {
		return maintenance.Window{}, fmt.Errorf("scheduling the maintenance window: %w", err)
	}
	return w, nil
}

// removeWindow takes window w (as scheduleWindow made it) out of the
// master's schedule, leaving every other window.
func (m *masterClient) removeWindow(ctx context.Context, w maintenance.Window) error {
	s, err := m.getSchedule(ctx)
	if err != nil {
		return err
	}
	n := len(s.Windows)
	s.Windows = slices.DeleteFunc(s.Windows, func(x maintenance.Window) bool {
		return x.Unavailability.Start.Nanoseconds == w.Unavailability.Start.Nanoseconds &&
			slices.EqualFunc(x.MachineIDs, w.MachineIDs, sameMachine)
	})
	if len(s.Windows) == n {
		return nil // already gone
	}
	if _, err := m.do(ctx, calls.UpdateMaintenanceSchedule(s), master.Response_UNKNOWN); err != nil {
		return fmt.Errorf("removing the maintenance window: %w", err)
	}
	return nil
}

// machineNames lists machines for output.
func machineNames(ms []mesos.MachineID) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.GetHostname()
	}
	return strings.Join(s, ", ")
}
