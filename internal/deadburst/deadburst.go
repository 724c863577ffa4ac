// Package deadburst tells an isolated "this token is dead" answer of a push
// service from a burst of them. One such answer means one phone's token is
// gone: its registration is removed. Most recent answers saying so mean the
// configuration is wrong, not the tokens (an APNs app build and endpoint that
// do not match, a topic of another app, credentials of another Firebase
// project), and removing the registrations would lose every one of them: in
// a burst they are kept and the push fails as misconfigured, to be retried
// once the configuration is fixed.
package deadburst

import "sync"

// Window is how many recent answers a Detector weighs.
const Window = 32

// Detector weighs one kind of dead-token answer against the pushes the
// service accepted. Its zero value is ready to use; it is safe for
// concurrent use.
//
// An answer counts as isolated only when the recent window holds at least
// one accepted push and answers of this kind are under half of it, so that a
// fresh process talking with a wrong configuration removes nothing.
type Detector struct {
	mu    sync.Mutex
	ring  [Window]int8 // 0 empty, 1 accepted, -1 dead
	next  int
	ok    int
	dead  int
	count int
}

// Accepted records a push the service accepted.
func (d *Detector) Accepted() { d.add(1) }

// Dead records a dead-token answer and reports whether it is isolated,
// judged on the answers before it: true means the token alone is dead.
func (d *Detector) Dead() (isolated bool) {
	d.mu.Lock()
	isolated = d.ok > 0 && 2*d.dead < d.count
	d.mu.Unlock()
	d.add(-1)
	return isolated
}

func (d *Detector) add(v int8) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.ring[d.next] {
	case 1:
		d.ok--
	case -1:
		d.dead--
	default:
		d.count++
	}
	d.ring[d.next] = v
	d.next = (d.next + 1) % Window
	if v == 1 {
		d.ok++
	} else {
		d.dead++
	}
}
