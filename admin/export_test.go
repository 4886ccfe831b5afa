package admin

// OpenConns is how many connections hold a slot: a connection leaves the
// count once its handler has closed it, which is the event the tests of
// the server's timeouts wait for instead of sleeping past them.
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
