package apns

import "sync"

// mixupWindow is how many recent APNs answers the mix-up detector weighs.
const mixupWindow = 32

// mixup tells an isolated BadDeviceToken (one dead token: remove it) from a
// burst of them (most recent answers: the app build and the endpoint do not
// match, sandbox against production, and every token looks bad). In a burst
// the registrations are kept and the push fails as misconfigured.
//
// An answer counts as isolated only when the recent window holds at least
// one accepted push and BadDeviceToken is under half of it, so a fresh
// process talking to the wrong endpoint deletes nothing.
type mixup struct {
	mu    sync.Mutex
	ring  [mixupWindow]int8 // 0 empty, 1 accepted, -1 BadDeviceToken
	next  int
	ok    int
	bad   int
	count int
}

// accepted records a push APNs accepted.
func (m *mixup) accepted() { m.add(1) }

// badDeviceToken records a BadDeviceToken answer and reports whether it is
// isolated (judged on the answers before it).
func (m *mixup) badDeviceToken() (isolated bool) {
	m.mu.Lock()
	isolated = m.ok > 0 && 2*m.bad < m.count
	m.mu.Unlock()
	m.add(-1)
	return isolated
}

func (m *mixup) add(v int8) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.ring[m.next] {
	case 1:
		m.ok--
	case -1:
		m.bad--
	default:
		m.count++
	}
	m.ring[m.next] = v
	m.next = (m.next + 1) % mixupWindow
	if v == 1 {
		m.ok++
	} else {
		m.bad++
	}
}
