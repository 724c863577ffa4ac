package db

// SetCacheForTest turns the registration cache of d on or off (and empties
// it), so that tests and benchmarks can measure the database itself.
func SetCacheForTest(d *DB, on bool) { d.cache.reset(on) }
