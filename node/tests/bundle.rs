//! Bundle files: the command line's `import` and `export` read and write them; what a
//! bundle holds and how it is taken in are the protocol's (`protocol/tests/bundle.rs`).

use guihe_node::bundle::{Bundle, BundleError, export, import};
use guihe_node::local::now_ms;
use guihe_node::local::{Local, init_enrolled};
use guihe_protocol::cert::{Keypair, Role, Root};
use guihe_protocol::deadline::Deadlines;
use guihe_protocol::model::Kind;
use guihe_protocol::store::Store;
use guihe_protocol::workload;
use rand_core::SeedableRng;

/// A bundle exported to a file imports from it, and a missing file is an IO error that
/// names it.
#[test]
fn a_bundle_file_imports_and_a_missing_one_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(Keypair::from_secret([3; 32]));
    let node = |name: &str, serial: u64, role: Role, division: &str| -> Local {
        let path = dir.path().join(name);
        init_enrolled(&path, &root, serial, role, division.parse().unwrap(), 365).unwrap();
        Local::open(&path).unwrap()
    };
    let mut township = node("township", 1, Role::Township, "500240101000");
    let mut county = node("county", 2, Role::County, "500240000000");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let new = workload::new_record(&mut rng, Kind::Case, &["500240101201".parse().unwrap()]);
    let (id, _) = township
        .replica
        .create(now_ms(), &mut rng, &Deadlines::default(), new)
        .unwrap();
    let stick = dir.path().join("stick.bundle");
    let written = export(&township, None, &stick).unwrap();
    let imported = import(&mut county, &stick).unwrap();
    assert!(written > 0);
    assert_eq!((imported.changes, imported.new), (written, written));
    assert!(county.replica.store.doc(id).unwrap().is_some());
    assert!(Bundle::from_bytes(&std::fs::read(&stick).unwrap()).is_ok());
    let missing = import(&mut county, &dir.path().join("none"));
    assert!(
        matches!(&missing, Err(BundleError::Io { path, .. }) if path.ends_with("none")),
        "{missing:?}"
    );
}
