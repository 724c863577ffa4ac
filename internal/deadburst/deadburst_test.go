package deadburst

import "testing"

// A fresh Detector judges nothing isolated; after accepted pushes a dead
// answer is isolated until such answers make up half of the window, and the
// window forgets them as accepted pushes follow.
func TestDetector(t *testing.T) {
	var d Detector
	if d.Dead() {
		t.Fatal("a dead answer with no accepted push before it was isolated")
	}
	d = Detector{}
	for range 10 {
		d.Accepted()
	}
	isolated := 0
	for range 20 {
		if d.Dead() {
			isolated++
		}
	}
	// After 10 accepted, a dead answer is isolated while those before it
	// are under half of what the window holds: the 10th (9 of 19) is, the
	// 11th (10 of 20) is not.
	if isolated != 10 {
		t.Fatalf("%d of 20 dead answers after 10 accepted were isolated, want 10", isolated)
	}
	for range Window {
		d.Accepted()
	}
	if !d.Dead() {
		t.Fatal("after a window of accepted pushes a dead answer was not isolated")
	}
}
