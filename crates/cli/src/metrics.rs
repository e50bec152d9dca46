//! `serve`'s `GET /metrics`, in Prometheus' text format: counters and
//! histograms fed by each request's [`AccessRecord`], and gauges read from
//! the service and the transform queue when scraped.
//!
//! Every label has a bounded set of values: statuses and cache tiers the
//! service makes, error kinds and shed reasons from fixed lists, and at
//! most [`MAX_BREAKER_HOSTS`] upstream hosts.

use edgethumb::service::{AccessRecord, Load};
use edgethumb::Fault;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::malloc;
use crate::native::TransformQueue;
use crate::result_store::StoreStats;

/// Hosts named in `edgethumb_breaker_state`; the rest are only counted.
const MAX_BREAKER_HOSTS: usize = 50;

/// The stages with a histogram, as `Server-Timing` names them.
const STAGES: [&str; 4] = ["fetch", "decode", "resize", "encode"];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    stages: HistogramVec,
    sheds: IntCounterVec,
    upstream_errors: IntCounterVec,
    misses_in_flight: IntGauge,
    source_bytes_in_flight: IntGauge,
    transforms: IntGaugeVec,
    breaker: IntGaugeVec,
    breaker_hosts: IntGaugeVec,
    store_reads: IntCounterVec,
    store_writes: IntCounterVec,
    store_writes_pending: IntGauge,
    heap: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("edgethumb".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "requests_total",
                "Requests answered, by status and cache tier",
            ),
            &["status", "cache"],
        )?;
        let stages = HistogramVec::new(
            HistogramOpts::new("stage_seconds", "Time in each stage of a miss")
                .buckets(prometheus::exponential_buckets(0.000_5, 2.0, 16)?),
            &["stage"],
        )?;
        let sheds = IntCounterVec::new(
            Opts::new("shed_total", "Requests shed with 503, by reason"),
            &["reason"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new("upstream_errors_total", "Failed source fetches, by kind"),
            &["kind"],
        )?;
        let store_reads = IntCounterVec::new(
            Opts::new(
                "result_store_reads_total",
                "Result store lookups, by result (hit, miss, error)",
            ),
            &["result"],
        )?;
        let store_writes = IntCounterVec::new(
            Opts::new(
                "result_store_writes_total",
                "Result store writes, by result (ok, error, dropped: queue full)",
            ),
            &["result"],
        )?;
        let store_writes_pending = IntGauge::new(
            "result_store_writes_pending",
            "Result store writes queued or in flight",
        )?;
        let misses_in_flight = IntGauge::new("misses_in_flight", "Distinct misses in flight")?;
        let source_bytes_in_flight = IntGauge::new(
            "source_bytes_in_flight",
            "Source bytes held by misses in flight",
        )?;
        let transforms = IntGaugeVec::new(
            Opts::new("transforms", "Transforms running, and waiting for a slot"),
            &["state"],
        )?;
        let breaker = IntGaugeVec::new(
            Opts::new(
                "breaker_state",
                "Upstream hosts whose circuit is not closed (1), by state; at most 50 hosts",
            ),
            &["host", "state"],
        )?;
        let breaker_hosts = IntGaugeVec::new(
            Opts::new(
                "breaker_hosts",
                "Upstream hosts whose circuit is not closed, by state",
            ),
            &["state"],
        )?;
        let heap = IntGaugeVec::new(
            Opts::new(
                "heap_bytes",
                "Heap bytes the allocator holds, in use and free (glibc only)",
            ),
            &["state"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(stages.clone()))?;
        registry.register(Box::new(sheds.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(misses_in_flight.clone()))?;
        registry.register(Box::new(source_bytes_in_flight.clone()))?;
        registry.register(Box::new(transforms.clone()))?;
        registry.register(Box::new(breaker.clone()))?;
        registry.register(Box::new(breaker_hosts.clone()))?;
        registry.register(Box::new(store_reads.clone()))?;
        registry.register(Box::new(store_writes.clone()))?;
        registry.register(Box::new(store_writes_pending.clone()))?;
        registry.register(Box::new(heap.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            stages,
            sheds,
            upstream_errors,
            misses_in_flight,
            source_bytes_in_flight,
            transforms,
            breaker,
            breaker_hosts,
            store_reads,
            store_writes,
            store_writes_pending,
            heap,
        })
    }

    /// Counts one answered request.
    pub fn observe(&self, r: &AccessRecord) {
        self.requests
            .with_label_values(&[r.status.to_string().as_str(), r.cache])
            .inc();
        let times = [r.fetch_ms, r.decode_ms, r.resize_ms, r.encode_ms];
        for (stage, ms) in STAGES.iter().zip(times) {
            if let Some(ms) = ms {
                self.stages
                    .with_label_values(&[*stage])
                    .observe(ms / 1000.0);
            }
        }
        if let Some(f) = r.failure {
            if let Some(reason) = f.shed {
                self.sheds.with_label_values(&[reason]).inc();
            }
            if f.fault == Fault::Upstream {
                self.upstream_errors.with_label_values(&[f.kind]).inc();
            }
        }
    }

    /// The exposition, with the gauges read now.
    pub fn render(
        &self,
        load: &Load,
        queue: &TransformQueue,
        store: Option<&StoreStats>,
    ) -> String {
        if let Some(st) = store {
            let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
            for (vec, label, now) in [
                (&self.store_reads, "hit", n(&st.read_hits)),
                (&self.store_reads, "miss", n(&st.read_misses)),
                (&self.store_reads, "error", n(&st.read_errors)),
                (&self.store_writes, "ok", n(&st.writes)),
                (&self.store_writes, "error", n(&st.write_errors)),
                (&self.store_writes, "dropped", n(&st.writes_dropped)),
            ] {
                // The store counts; the exposition catches up.
                let c = vec.with_label_values(&[label]);
                c.inc_by(now.saturating_sub(c.get()));
            }
            self.store_writes_pending.set(n(&st.writes_pending) as i64);
        }
        self.misses_in_flight.set(load.misses_in_flight as i64);
        self.source_bytes_in_flight
            .set(load.source_bytes_in_flight as i64);
        self.transforms
            .with_label_values(&["running"])
            .set(queue.running() as i64);
        self.transforms
            .with_label_values(&["waiting"])
            .set(queue.waiting() as i64);
        if let Some(h) = malloc::heap() {
            self.heap
                .with_label_values(&["in_use"])
                .set(h.in_use as i64);
            self.heap.with_label_values(&["free"]).set(h.free as i64);
        }
        self.breaker.reset();
        self.breaker_hosts.reset();
        for state in ["open", "half_open"] {
            let n = load.breaker.iter().filter(|(_, s)| *s == state).count();
            self.breaker_hosts.with_label_values(&[state]).set(n as i64);
        }
        let mut hosts = load.breaker.clone();
        // Open ones first, then by name: the same 50 on every scrape.
        hosts.sort_by(|a, b| (a.1 != "open", &a.0).cmp(&(b.1 != "open", &b.0)));
        for (host, state) in hosts.iter().take(MAX_BREAKER_HOSTS) {
            self.breaker
                .with_label_values(&[host.as_str(), state])
                .set(1);
        }
        let mut out = Vec::new();
        // Encoding into a Vec fails only on a metric the registry refused.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The exposition's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
