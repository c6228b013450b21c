package audit

import (
	"sync/atomic"
	"testing"
)

func benchRecord() *Record {
	exit := 0
	r := &Record{Event: EventExecute, Outcome: OutcomeExecuted, Tenant: "tenant-1", RequestID: "req-0123456789",
		Backend: "native", Status: "ok", ExitCode: &exit, WallMS: 12.5, CPUMS: 8.25, PeakMemoryBytes: 24 << 20,
		StdoutBytes: 120, Policy: &PolicyVerdict{Profile: "default", Allowed: true}}
	r.SetCode([]byte("import math\nprint(math.pi)\n"), false)
	return r
}

// BenchmarkAppend: one appender, so one fsync per record.
func BenchmarkAppend(b *testing.B) {
	var syncs atomic.Int64
	l := open(b, Options{Dir: b.TempDir(), wrapFile: countSyncs(&syncs)})
	defer l.Close()
	for b.Loop() {
		if err := l.Append(benchRecord()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/float64(syncs.Load()), "records/fsync")
}

// BenchmarkAppendParallel: 16 appenders per CPU share fsyncs (group commit).
func BenchmarkAppendParallel(b *testing.B) {
	var syncs atomic.Int64
	l := open(b, Options{Dir: b.TempDir(), wrapFile: countSyncs(&syncs)})
	defer l.Close()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(benchRecord()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/float64(syncs.Load()), "records/fsync")
}
