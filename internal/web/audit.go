package web

// STUB — replaced by the helper that owns this page.

func (s *Server) auditRoutes() {}
