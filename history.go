package p2http

import (
	"errors"
	"time"
)

// PushOutcome is what became of one push to a registration.
type PushOutcome string

// The outcomes of a push.
const (
	// PushDelivered: the push service accepted the wake-up.
	PushDelivered PushOutcome = "delivered"
	// PushCoalesced: the push was merged into a trailing push for the same
	// node (PushResult.Coalesced), whose own outcome is recorded when it
	// has been sent.
	PushCoalesced PushOutcome = "coalesced"
	// PushFailed: the push failed; FailureReason says why.
	PushFailed PushOutcome = "failed"
)

// PushHistory is what the stored mode keeps of the pushes to a
// registration, for administrators asking why a phone was not woken. It
// holds no token, account or message: a count, times, an outcome and a
// reason from a bounded set (FailureReason). The zero value, with Recorded
// false, is what a store that keeps nothing (the stateless mode) reports.
//
// A store's history can be behind the pushes: to keep each registration's
// row to about one write an hour, the relay writes a node's pushes within a
// second only when they are news (the node's first push, or another kind
// of outcome than the stored one, a minute after it), and otherwise once
// the stored push is PushTimePrecision old, everything counted meanwhile
// (see relay's push log). The relay's own look-up adds what it has not
// written yet.
//
// The history is kept across re-registrations of the same device: a phone
// registers again at every start of its app, and the pushes that failed
// before are what an administrator looks for then. A failure older than
// the registration's UpdatedAt happened with the token it had before.
type PushHistory struct {
	// Recorded is true when the store records the pushes to the
	// registration (the stored mode); false when it keeps nothing of them,
	// and the rest is empty.
	Recorded bool
	// Pushes counts the pushes the registration received since it was
	// first registered: pushes delivered, coalesced or failed once its node
	// and secret were checked. A trailing push owed by coalescing is not
	// counted again.
	Pushes int64
	// LastPushAt is when the last push recorded ended, and LastOutcome what
	// became of it; nil and "" when none was.
	LastPushAt  *time.Time
	LastOutcome PushOutcome
	// LastFailureAt is when a push to the registration last failed, and
	// LastFailureReason why (FailureReason); nil and "" when none did.
	LastFailureAt     *time.Time
	LastFailureReason string
}

// PushRecord is what became of the pushes to one node since they were last
// recorded: what a Keeper adds to the node's PushHistory.
type PushRecord struct {
	Node string
	// Pushes is how many pushes the record counts (zero for a trailing push
	// alone: the pushes it carries were counted when they were coalesced).
	Pushes int64
	// At is when the last of them ended, and Outcome what became of it.
	At      time.Time
	Outcome PushOutcome
	// FailedAt is when the last of them that failed ended, zero when none
	// did, and FailureReason why it failed.
	FailedAt      time.Time
	FailureReason string
}

// Add folds rec into h as a Keeper stores it: the count grows by
// rec.Pushes, and the last push and last failure are rec's where rec's are
// as late or later.
func (h *PushHistory) Add(rec PushRecord) {
	h.Pushes += rec.Pushes
	if !rec.At.IsZero() && (h.LastPushAt == nil || !rec.At.Before(*h.LastPushAt)) {
		at := rec.At
		h.LastPushAt, h.LastOutcome = &at, rec.Outcome
	}
	if !rec.FailedAt.IsZero() && (h.LastFailureAt == nil || !rec.FailedAt.Before(*h.LastFailureAt)) {
		at := rec.FailedAt
		h.LastFailureAt, h.LastFailureReason = &at, rec.FailureReason
	}
}

// LastFailed returns the reason the last recorded push failed for, or ""
// when it did not fail (or none was recorded).
func (h PushHistory) LastFailed() string {
	if h.LastOutcome != PushFailed {
		return ""
	}
	return h.LastFailureReason
}

// ReasonError is implemented by the causes a Sender keeps of a push
// service's error answer (fcm.StatusError, apns.StatusError).
// ServiceReason names the answer by the service's own reason when it is
// one the sender knows, such as FCM's "QUOTA_EXCEEDED" or APNs'
// "BadDeviceToken", and is "" for anything else: what it returns comes from
// a fixed list, never from the answer's text.
type ReasonError interface {
	error
	ServiceReason() string
}

// FailureReason names why a push failed, as a registration's PushHistory
// keeps it: the push service's reason (a ReasonError in err's chain, or a
// DeadTokenError's Reason, which the senders take from their fixed lists),
// else err's code (ETIMEOUT, ERATELIMIT, EUNAVAILABLE…). It is "" for nil.
// Every value comes from a bounded set; none is free text from upstream.
func FailureReason(err error) string {
	if err == nil {
		return ""
	}
	var re ReasonError
	if errors.As(err, &re) {
		if r := re.ServiceReason(); r != "" {
			return r
		}
	}
	var dead *DeadTokenError
	if errors.As(err, &dead) && dead.Reason != "" {
		return dead.Reason
	}
	return ErrorCode(err)
}
