//! Arbitrary UTF-8 as a digest (`sha256:<64 lowercase hex>`) and as a bare hex digest. Parsing
//! must not panic, and only the canonical form is accepted: a parsed digest prints as exactly
//! the input, and its hex and JSON forms parse back to it.

#![no_main]

use berth_image::Digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = s.parse::<Digest>() {
        assert_eq!(d.to_string(), s, "accepted a non-canonical digest");
        assert_eq!(Digest::from_hex(&d.hex()).unwrap(), d);
        assert!(d.short().len() == 12 && d.hex().starts_with(&d.short()));
    }
    if let Ok(d) = Digest::from_hex(s) {
        assert_eq!(d.hex(), s, "accepted non-canonical hex");
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }
    // `Deserialize` goes through the same parser: as a JSON string, the same verdict.
    let json = serde_json::to_string(s).unwrap();
    match serde_json::from_str::<Digest>(&json) {
        Ok(d) => {
            assert_eq!(s.parse::<Digest>().ok(), Some(d));
            assert_eq!(serde_json::to_string(&d).unwrap(), json);
        }
        Err(_) => assert!(s.parse::<Digest>().is_err()),
    }
    // And the raw bytes as JSON, whatever they hold.
    let _ = serde_json::from_slice::<Digest>(data);
});
