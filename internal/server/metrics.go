package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series, on a registry of its own so
// that two servers in one process (tests) do not collide.
type metrics struct {
	reg         *prometheus.Registry
	executions  *prometheus.CounterVec   // kind, backend, status
	phase       *prometheus.HistogramVec // phase: policy, acquire, run
	rejections  *prometheus.CounterVec   // reason
	rateLimited *prometheus.CounterVec   // scope: key, session
	requests    *prometheus.CounterVec   // route, code
	auditErrors prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pybox_executions_total", Help: "Executions (one-shots and cells) by kind, backend and result status, policy rejections included.",
		}, []string{"kind", "backend", "status"}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pybox_phase_seconds", Help: "Time spent per phase of an execution: policy (static check), acquire (queue and sandbox), run (the code).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"phase"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pybox_rejections_total", Help: "Requests rejected before or instead of running, by reason (policy, too_large, rate_limited, quota, unauthorized, not_found, ...).",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pybox_rate_limited_total", Help: "Requests refused by a token bucket, by scope (key or session).",
		}, []string{"scope"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pybox_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pybox_audit_errors_total", Help: "Audit records the log refused (each request was answered 503).",
		}),
	}
	m.reg.MustRegister(m.executions, m.phase, m.rejections, m.rateLimited, m.requests, m.auditErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pybox_sessions", Help: "Sessions holding a sandbox."},
			func() float64 { return float64(s.sessions.Count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pybox_pool_ready", Help: "Warm sandboxes ready in the pool."},
			func() float64 { return float64(s.launcher.Stats().Ready) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pybox_executions_running", Help: "Executions running now."},
			func() float64 { return float64(s.running.Load()) }),
	)
	return m
}
