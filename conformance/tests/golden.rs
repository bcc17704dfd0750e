//! Golden snapshots of every case's expectation, one file per quirk class: a change to a
//! profile, the model or a fault shows up as a reviewable diff (`cargo insta review`). On CI
//! they are checked, never written.

use p1sim_conformance::{Class, expectation, suite};

#[test]
fn expectations_per_class() {
    let cases = suite::cases();
    for class in Class::ALL {
        let text: String =
            cases.iter().filter(|c| c.class == class).map(expectation::render).collect::<Vec<_>>().join("\n");
        insta::assert_snapshot!(class.name(), text);
    }
}
