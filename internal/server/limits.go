package server

import (
	"net/http"

	"github.com/pybox-dev/pybox/api"
)

// getLimits tells the caller what its key may do (GET /v1/limits).
func (s *Server) getLimits(w http.ResponseWriter, r *http.Request) {
	t := attemptOf(r).tenant
	info := api.LimitsInfo{
		Policy: string(s.cfg.Policy.Profile()), MaxCodeBytes: s.cfg.MaxCodeBytes, MaxCodeLines: s.cfg.MaxCodeLines,
		MaxBodyBytes: s.cfg.MaxBodyBytes, SessionRatePerSecond: s.cfg.SessionRate, SessionRateBurst: s.cellRates.burst,
		MaxSessions: s.sessions.Max(), MaxConcurrent: s.cfg.MaxConcurrent,
		Defaults: effective(s.cfg.Defaults), Maxima: effective(s.cfg.Max),
		MaxFileBytes: s.cfg.MaxFileBytes, MaxFiles: s.cfg.MaxFiles,
	}
	if s.cfg.SessionRate <= 0 {
		info.SessionRateBurst = 0
	}
	if t != nil {
		info.Tenant = t.Name
		info.Sessions = s.sessions.CountOf(t.Name)
		if t.Policy != nil {
			info.Policy = string(t.Policy.Profile())
		}
		if t.limiter != nil {
			info.RatePerSecond, info.RateBurst = t.Rate, t.Burst
		}
		if t.MaxSessions > 0 {
			info.MaxSessions = min(info.MaxSessions, t.MaxSessions)
		}
	}
	if s.cfg.ForcePolicy != nil {
		info.Policy = string(s.cfg.ForcePolicy.Profile())
	}
	writeJSON(w, http.StatusOK, info)
}
