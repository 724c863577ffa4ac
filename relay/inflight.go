package relay

// InFlight reports the pushes being handled now, the trailing pushes of
// coalescing included, and their bound (Config.MaxInFlight): a push beyond
// it is refused at once. The metrics export both at each scrape.
func (r *Relay) InFlight() (n, limit int) { return len(r.inflight), cap(r.inflight) }
