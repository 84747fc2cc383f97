use plane_orch::store::State;
fn main() {
    let p = std::env::args().nth(1).unwrap();
    let mode = std::env::args().nth(2).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let t = std::time::Instant::now();
    match mode.as_str() {
        "state" => {
            let s: State = serde_json::from_slice(&bytes).unwrap();
            eprintln!("{}", s.tickets.len());
        }
        "value" => {
            let s: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            eprintln!("{}", s["tickets"].as_object().unwrap().len());
        }
        "ignored" => {
            let _s: serde::de::IgnoredAny = serde_json::from_slice(&bytes).unwrap();
        }
        _ => {}
    }
    eprintln!("{:?}", t.elapsed());
}
