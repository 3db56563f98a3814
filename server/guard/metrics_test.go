package guard

import (
	"bytes"

	"github.com/VictoriaMetrics/metrics"
)

func metricsText() string {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	return b.String()
}
