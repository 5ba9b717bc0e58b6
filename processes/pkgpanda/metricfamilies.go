package pkgpanda

import "github.com/procpanda/procpanda/libprocess"

// metricFamilies declares how the process' metrics (named in Start's
// documentation) appear in /metrics/prometheus: the route, the CLI's
// exit status and the reason of an authentication refusal become labels,
// the route timer a summary in seconds. /metrics/snapshot keeps the
// paths.
func metricFamilies() []libprocess.Family {
	return []libprocess.Family{
		{Path: "pkgpanda/{route}/runs", Name: "pkgpanda_route_runs", Help: "CLI runs started by the route's operations."},
		{Path: "pkgpanda/{route}/failures", Name: "pkgpanda_route_failures", Help: "CLI runs of the route that failed (non-zero exit, signal, timeout or not started)."},
		{Path: "pkgpanda/{route}/queue_full", Name: "pkgpanda_route_queue_full", Help: "Requests of the route refused because its queue was full."},
		{Path: "pkgpanda/{route}/queue_depth", Name: "pkgpanda_route_queue_depth", Help: "Calls waiting for the route's actor."},
		{Path: "pkgpanda/{route}/duration", Name: "pkgpanda_route_duration", Unit: libprocess.UnitSeconds, Help: "Time the route's actor spent on each call."},
		{Path: "pkgpanda/{route}/exit_status/{status}", Name: "pkgpanda_route_exits", Help: "CLI runs of the route by exit status (\"signal\": ended by a signal, \"not_started\": never ran)."},
		{Path: "pkgpanda/auth/{reason}", Name: "pkgpanda_auth_refusals", Help: "Requests and messages refused by authentication (\"unauthenticated\") or authorization (\"forbidden\")."},
		{Path: "pkgpanda/messages/undecodable", Name: "pkgpanda_messages_undecodable", Help: "PkgpandaCall messages whose body did not decode."},
		{Path: "pkgpanda/messages/no_sender", Name: "pkgpanda_messages_no_sender", Help: "PkgpandaCall messages without a sender to answer."},
		{Path: "pkgpanda/messages/replies_dropped", Name: "pkgpanda_messages_replies_dropped", Help: "PkgpandaResponse replies not sent (no sender, refusal replies over their rate, send failed)."},
		{Path: "pkgpanda/uploads/rejected", Name: "pkgpanda_uploads_rejected", Help: "Uploads refused because the upload limits were reached."},
		{Path: "pkgpanda/uploads/too_large", Name: "pkgpanda_uploads_too_large", Help: "Uploads refused for exceeding the size limit."},
		{Path: "pkgpanda/uploads/stale_removed", Name: "pkgpanda_uploads_stale_removed", Help: "Uploads left by an earlier process and removed at start."},
		{Path: "pkgpanda/uploads/active", Name: "pkgpanda_uploads_active", Help: "Uploads being received or waiting in a queued add."},
		{Path: "pkgpanda/uploads/bytes", Name: "pkgpanda_uploads", Unit: libprocess.UnitBytes, Help: "Bytes held by uploads being received or waiting in a queued add."},
		{Path: "pkgpanda/repository_lock/busy", Name: "pkgpanda_repository_lock_busy", Help: "Mutations that found the repository lock held by another process."},
		{Path: "pkgpanda/repository_lock/timeouts", Name: "pkgpanda_repository_lock_timeouts", Help: "Mutations refused because the repository lock stayed busy."},
		{Path: "pkgpanda/panics", Name: "pkgpanda_panics", Help: "Panics recovered on pkgpanda's goroutines; each answered its request 500."},
		{Path: "pkgpanda/interrupted_activation/refused", Name: "pkgpanda_interrupted_activation_refused", Help: "Requests refused because an interrupted activation left the install inconsistent."},
		{Path: "pkgpanda/interrupted_activation/leftovers", Name: "pkgpanda_interrupted_activation_leftovers", Help: "Leftovers of an interrupted activation in the install root (non-zero: activations are refused)."},
		{Path: "pkgpanda/cache/hits", Name: "pkgpanda_cache_hits", Help: "Reads answered from a kept result."},
		{Path: "pkgpanda/cache/misses", Name: "pkgpanda_cache_misses", Help: "Reads that found no usable kept result."},
		{Path: "pkgpanda/cache/shared_runs", Name: "pkgpanda_cache_shared_runs", Help: "Reads that waited for a run another read had started."},
		{Path: "pkgpanda/cache/stale", Name: "pkgpanda_cache_stale", Help: "Kept results dropped because their inputs changed on disk."},
		{Path: "pkgpanda/cache/untrusted", Name: "pkgpanda_cache_untrusted", Help: "Results not kept because a later change might go unnoticed."},
		{Path: "pkgpanda/cache/invalidations", Name: "pkgpanda_cache_invalidations", Help: "Times every kept result was dropped after a mutation."},
	}
}
