//! The demo's directory (one grid cell, a grid staff member and a property
//! manager with tokens made up per run) and its scratch directory.

use crate::yard::YardOptions;
use anyhow::Context as _;

/// A login of the demo's dashboard: made up for each run, so the printed
/// tokens are only good while that demo runs.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    /// User name in the directory.
    pub user: &'static str,
    /// What the user is, for people.
    pub role: &'static str,
    /// The token to type at /login.
    pub token: String,
}

/// The demo's directory: the yard's site in its grid cell, one grid staff
/// member on duty there and one property manager of the site's company.
/// Returns the file's text and the two logins.
pub fn demo_directory(yard: &YardOptions) -> (String, Vec<DemoLogin>) {
    demo_directory_covering(yard, &[])
}

/// [`demo_directory`] that also puts `sites` (id and buildings; the
/// simulated district's) in the yard's cell and company, so the demo's staff
/// and manager see the district's alerts too.
pub fn demo_directory_covering(
    yard: &YardOptions,
    sites: &[(String, Vec<String>)],
) -> (String, Vec<DemoLogin>) {
    let logins = vec![
        DemoLogin {
            user: "demo.staff",
            role: "grid staff",
            token: random_token(),
        },
        DemoLogin {
            user: "demo.manager",
            role: "property manager",
            token: random_token(),
        },
    ];
    let hash = gridwatch_analytics::alerts::directory::token_sha256;
    let text = format!(
        r#"# Written by gridwatch-sim demo for this run only.
[[cells]]
id = "{cell}"
name = "Demo grid cell"
on_duty = ["demo.staff"]

[[companies]]
id = "demo-property"
name = "Demo Property Services"

[[sites]]
id = "{site}"
cell = "{cell}"
company = "demo-property"
buildings = ["yard"]

[[users]]
name = "demo.staff"
role = "grid_staff"
token_sha256 = "{staff}"

[[users]]
name = "demo.manager"
role = "property_manager"
company = "demo-property"
token_sha256 = "{manager}"
"#,
        cell = yard.cell,
        site = yard.site,
        staff = hash(&logins[0].token),
        manager = hash(&logins[1].token),
    );
    let mut text = text;
    for (id, buildings) in sites {
        let buildings: Vec<String> = buildings.iter().map(|b| format!("{b:?}")).collect();
        text.push_str(&format!(
            "\n[[sites]]\nid = {id:?}\ncell = {cell:?}\ncompany = \"demo-property\"\nbuildings = [{}]\n",
            buildings.join(", "),
            cell = yard.cell,
        ));
    }
    (text, logins)
}

fn random_token() -> String {
    format!("demo-{:016x}", rand::random::<u64>())
}

/// A scratch directory for the demo's directory file, removed on drop.
pub(super) struct Scratch(pub(super) std::path::PathBuf);

impl Scratch {
    pub(super) fn new() -> anyhow::Result<Self> {
        let p = std::env::temp_dir().join(format!("gridwatch-demo-{}", std::process::id()));
        std::fs::create_dir_all(&p)
            .with_context(|| format!("creating the demo's scratch directory {}", p.display()))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
