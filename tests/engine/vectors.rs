//! `tests/vectors/transform.json`: the shared canonicalization vectors that
//! the CloudFront Function is held to as well.

use imgpipe::transform;

#[derive(serde::Deserialize)]
struct Vector {
    input: String,
    accept: Option<String>,
    canonical: Option<String>,
    error: Option<String>,
}

#[test]
fn every_vector_holds() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/transform.json");
    let vectors: Vec<Vector> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(vectors.len() > 100, "the vector file should be thorough");
    let mut failures = Vec::new();
    for v in &vectors {
        let got =
            transform::parse_uri(&v.input, v.accept.as_deref()).map(|c| c.path()).map_err(|e| e.code().to_string());
        let expected = match (&v.canonical, &v.error) {
            (Some(c), None) => Ok(c.clone()),
            (None, Some(e)) => Err(e.clone()),
            _ => panic!("vector needs exactly one of canonical/error: {}", v.input),
        };
        if got != expected {
            failures.push(format!(
                "{} (accept {:?}): got {got:?}, expected {expected:?}",
                v.input.chars().take(120).collect::<String>(),
                v.accept
            ));
        }
    }
    assert!(failures.is_empty(), "{} vector(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn canonical_paths_are_fixed_points() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/transform.json");
    let vectors: Vec<Vector> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for v in vectors.iter().filter_map(|v| v.canonical.as_ref()) {
        let again = transform::parse_uri(v, None).unwrap().path();
        assert_eq!(&again, v, "canonical form must parse to itself");
    }
}
