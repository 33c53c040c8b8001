//! Human-friendly formatting shared by the commands.

use std::time::Duration;

/// `1.2 s`, `35 ms`, `850 µs`.
pub fn duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros >= 10_000_000 {
        format!("{:.0} s", d.as_secs_f64())
    } else if micros >= 1_000_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else if micros >= 1_000 {
        format!("{:.1} ms", micros as f64 / 1000.0)
    } else {
        format!("{micros} µs")
    }
}

/// Milliseconds with three decimals, for JSON.
pub fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// `1.5 KiB`, `3.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Prints one JSON value on its own line.
pub fn json_line(value: &serde_json::Value) {
    println!("{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(duration(Duration::from_millis(35)), "35.0 ms");
        assert_eq!(duration(Duration::from_millis(1200)), "1.2 s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(millis(Duration::from_micros(1234)), 1.234);
    }
}
