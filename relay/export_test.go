package relay

// FlushPushLog runs one flush of r's push log, as its ticker does.
func FlushPushLog(r *Relay) { r.pushLog.flush(false) }

// SetMaxHeld bounds the entries r's push log keeps waiting.
func SetMaxHeld(r *Relay, n int) {
	r.pushLog.mu.Lock()
	r.pushLog.maxHeld = n
	r.pushLog.mu.Unlock()
}
