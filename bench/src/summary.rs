//! Summaries of repeated timings, written by `bench-probe` and read by
//! `bench-report` as one JSON object.

use std::time::Duration;

use serde_json::{Value, json};

/// Timings of repeated runs of one measurement, with its label.
#[derive(Debug, Clone)]
pub struct Timings {
    /// What was measured, as the report names it.
    pub label: String,
    /// One duration per measured run, in run order.
    pub runs: Vec<Duration>,
    /// Responses that were not `200` while measuring (hot swap only; 0 otherwise).
    pub non_200: u64,
}

impl Timings {
    /// The fastest run.
    pub fn min(&self) -> Duration {
        self.runs.iter().copied().min().unwrap_or_default()
    }

    /// The slowest run.
    pub fn max(&self) -> Duration {
        self.runs.iter().copied().max().unwrap_or_default()
    }

    /// The median run (the mean of the two middle runs for an even count).
    pub fn median(&self) -> Duration {
        let mut sorted = self.runs.clone();
        sorted.sort();
        match sorted.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
        }
    }

    /// The JSON form `bench-report` reads.
    pub fn to_json(&self) -> Value {
        json!({
            "label": self.label,
            "runs_ms": self.runs.iter().map(|run| millis(*run)).collect::<Vec<_>>(),
            "min_ms": millis(self.min()),
            "median_ms": millis(self.median()),
            "max_ms": millis(self.max()),
            "non_200": self.non_200,
        })
    }

    /// Reads what [`Self::to_json`] wrote.
    pub fn from_json(value: &Value) -> anyhow::Result<Self> {
        let label = value["label"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no label"))?
            .to_owned();
        let runs = value["runs_ms"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("no runs_ms"))?
            .iter()
            .map(|run| {
                run.as_f64()
                    .map(|ms| Duration::from_secs_f64(ms / 1e3))
                    .ok_or_else(|| anyhow::anyhow!("a run is not a number"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            label,
            runs,
            non_200: value["non_200"].as_u64().unwrap_or(0),
        })
    }
}

/// Milliseconds with microsecond resolution.
pub fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings(runs_ms: &[u64]) -> Timings {
        Timings {
            label: "x".to_owned(),
            runs: runs_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            non_200: 0,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(timings(&[5, 1, 3]).median(), Duration::from_millis(3));
        assert_eq!(timings(&[4, 1, 3, 2]).median(), Duration::from_micros(2500));
        assert_eq!(timings(&[]).median(), Duration::ZERO);
    }

    #[test]
    fn json_round_trip() {
        let original = timings(&[7, 2, 9]);
        let read = Timings::from_json(&original.to_json()).expect("readable");
        assert_eq!(read.runs, original.runs);
        assert_eq!(read.min(), Duration::from_millis(2));
        assert_eq!(read.max(), Duration::from_millis(9));
    }
}
