//! Unit tests of the demo's directory.

use super::*;
use gridwatch_analytics::alerts::directory::{Directory, Role};
use gridwatch_analytics::store::Scope;

#[test]
fn the_demo_logins_open_the_yard_to_staff_and_its_manager() {
    let yard = YardOptions::new("127.0.0.1:1883".parse().unwrap());
    let (text, logins) = demo_directory(&yard);
    let dir = Directory::from_toml_str(&text, "demo directory").expect("directory loads");
    let staff = dir.authenticate(&logins[0].token).expect("staff token");
    assert_eq!(
        (staff.name.as_str(), staff.role),
        ("demo.staff", Role::GridStaff)
    );
    assert_eq!(dir.scope(staff), Scope::Cells(vec![yard.cell.clone()]));
    let manager = dir.authenticate(&logins[1].token).expect("manager token");
    assert_eq!(manager.role, Role::PropertyManager);
    assert_eq!(dir.scope(manager), Scope::Sites(vec![yard.site.clone()]));
    // Tokens are made up per run, never written down in the file.
    assert!(!text.contains(&logins[0].token));
    let (_, again) = demo_directory(&yard);
    assert_ne!(again[0].token, logins[0].token);
}

#[test]
fn the_demo_directory_covers_the_district_for_staff_and_manager() {
    let yard = YardOptions::new("127.0.0.1:1883".parse().unwrap());
    let sites = district::sites(&demo_scenario());
    assert_eq!(
        sites,
        [("s01".to_owned(), vec!["b01".to_owned(), "b02".to_owned()])]
    );
    let (text, logins) = demo_directory_covering(&yard, &sites);
    let dir = Directory::from_toml_str(&text, "demo directory").expect("directory loads");
    let s01 = dir
        .sites
        .iter()
        .find(|s| s.id == "s01")
        .expect("district site");
    assert_eq!((s01.cell.as_str(), s01.buildings.len()), ("cell-demo", 2));
    let manager = dir.authenticate(&logins[1].token).expect("manager token");
    assert_eq!(
        dir.scope(manager),
        Scope::Sites(vec![yard.site.clone(), "s01".into()])
    );
}
