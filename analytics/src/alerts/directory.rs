//! The directory: who is who, read from a TOML file in `config/`.
//!
//! It maps each site (with its buildings) to a grid cell and a property
//! company, names each cell's on-duty staff and backups, and lists the users
//! of the API and dashboard with their role and the SHA-256 of their token.
//! It decides three things: where an alert is routed (site → cell), who hears
//! about it at each escalation level, and what each user may see ([`Scope`]).
//! Changing staff or adding a site is an edit of the file, not a rebuild.
//!
//! Tokens are never in the file, only their hashes:
//! `printf %s "$TOKEN" | sha256sum`.

use crate::alerts::route::{CellsConfig, SiteCell};
use crate::store::Scope;
use crate::toml_file::locate::FieldPath;
use crate::toml_file::{ConfigError, FieldError};
use gridwatch_telemetry::ids::validate_id;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The `[directory]` section of the analytics config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// The directory file. Without it there are no users (the API refuses
    /// everyone) and routing comes from `[cells]` alone.
    pub path: Option<PathBuf>,
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees and acts on the alerts of their grid cells.
    GridStaff,
    /// Sees the alerts and charging stations of their company's sites.
    PropertyManager,
    /// Sees and acts on everything.
    Admin,
}

/// One grid cell and who answers for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    /// Cell id, as in alert topics.
    pub id: String,
    /// A name for people.
    #[serde(default)]
    pub name: String,
    /// Told first.
    pub on_duty: Vec<String>,
    /// Told when the on-duty staff do not acknowledge in time.
    #[serde(default)]
    pub backups: Vec<String>,
}

/// A property company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Company {
    /// Company id.
    pub id: String,
    /// A name for people.
    #[serde(default)]
    pub name: String,
}

/// A site (residential compound) with its buildings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Site id, as the gateways report it.
    pub id: String,
    /// Its grid cell.
    pub cell: String,
    /// Its property company, if any.
    #[serde(default)]
    pub company: Option<String>,
    /// Building ids, for people and grouping.
    #[serde(default)]
    pub buildings: Vec<String>,
    /// The site's time zone, for the times its pages show and the days
    /// and nights of its charts: a fixed offset (`+08:00`) or a zone
    /// without daylight saving (`Asia/Shanghai`); without it, `[detect]
    /// utc_offset_min`.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// A user of the API and dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name; appears in the audit trail.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Grid staff: their cells (besides those naming them on duty or backup).
    #[serde(default)]
    pub cells: Vec<String>,
    /// Property manager: their company.
    #[serde(default)]
    pub company: Option<String>,
    /// Lower-case hex SHA-256 of their bearer token.
    pub token_sha256: String,
    /// Where the e-mail channel (`[notify.email]`) reaches them; without it
    /// they get no mail.
    #[serde(default)]
    pub email: Option<String>,
    /// The dashboard's language for them (`zh-CN` or `en`), unless they
    /// pick the other one on a page; without it, their browser's
    /// `Accept-Language`, then Chinese.
    #[serde(default)]
    pub language: Option<String>,
}

/// The parsed, checked directory file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Directory {
    /// `[[cells]]`.
    pub cells: Vec<Cell>,
    /// `[[companies]]`.
    pub companies: Vec<Company>,
    /// `[[sites]]`.
    pub sites: Vec<Site>,
    /// `[[users]]`.
    pub users: Vec<User>,
}

impl Directory {
    /// Each site's zone: its `time_zone` here, else `default_offset_min`
    /// (`[detect] utc_offset_min`), so pages and messages show a site's
    /// own local time.
    pub fn zones(&self, default_offset_min: i32) -> crate::i18n::zones::SiteZones {
        let sites = self
            .sites
            .iter()
            .filter_map(|s| {
                // Checked when the directory was loaded.
                let z = s.time_zone.as_deref()?;
                crate::i18n::zones::parse(z)
                    .ok()
                    .map(|off| (s.id.clone(), off))
            })
            .collect();
        crate::i18n::zones::SiteZones::new(default_offset_min, sites)
    }

    /// Reads and checks the directory file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_toml_str(
            &crate::toml_file::read_toml(path)?,
            &path.display().to_string(),
        )
    }

    /// Parses and checks directory text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ConfigError> {
        crate::toml_file::parse_toml(text, origin, Self::validate)
    }

    /// Checks ids, references between sections, and that no two users share
    /// a name or a token.
    pub fn validate(&self) -> Result<(), FieldError> {
        let at = |section: &str, i: usize, key: &str| FieldPath::keys(&[section]).index(i).key(key);
        let users: HashSet<&str> = self.users.iter().map(|u| u.name.as_str()).collect();
        let cells: HashSet<&str> = self.cells.iter().map(|c| c.id.as_str()).collect();
        let companies: HashSet<&str> = self.companies.iter().map(|c| c.id.as_str()).collect();
        for (i, c) in self.cells.iter().enumerate() {
            validate_id(&c.id).map_err(|m| FieldError::at(at("cells", i, "id"), m))?;
            for (key, names) in [("on_duty", &c.on_duty), ("backups", &c.backups)] {
                if let Some(n) = names.iter().find(|n| !users.contains(n.as_str())) {
                    return Err(FieldError::at(
                        at("cells", i, key),
                        format!("names {n:?}, who is not in [[users]]"),
                    ));
                }
            }
        }
        let mut seen_sites = HashSet::new();
        for (i, s) in self.sites.iter().enumerate() {
            validate_id(&s.id).map_err(|m| FieldError::at(at("sites", i, "id"), m))?;
            if !seen_sites.insert(s.id.as_str()) {
                return Err(FieldError::at(
                    at("sites", i, "id"),
                    format!("site {:?} is listed twice", s.id),
                ));
            }
            if !cells.contains(s.cell.as_str()) {
                return Err(FieldError::at(
                    at("sites", i, "cell"),
                    format!("cell {:?} is not in [[cells]]", s.cell),
                ));
            }
            if let Some(z) = &s.time_zone {
                crate::i18n::zones::parse(z)
                    .map_err(|m| FieldError::at(at("sites", i, "time_zone"), m))?;
            }
            if let Some(c) = s.company.as_deref().filter(|c| !companies.contains(c)) {
                return Err(FieldError::at(
                    at("sites", i, "company"),
                    format!("company {c:?} is not in [[companies]]"),
                ));
            }
        }
        let mut names = HashSet::new();
        let mut hashes = HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if !names.insert(u.name.as_str()) {
                return Err(FieldError::at(
                    at("users", i, "name"),
                    format!("user {:?} is listed twice", u.name),
                ));
            }
            let h = &u.token_sha256;
            if h.len() != 64
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(FieldError::at(
                    at("users", i, "token_sha256"),
                    "must be 64 lower-case hex digits (printf %s \"$TOKEN\" | sha256sum)",
                ));
            }
            if let Some(e) = &u.email {
                if let Err(why) = e.parse::<lettre::Address>() {
                    return Err(FieldError::at(
                        at("users", i, "email"),
                        format!("{e:?} is not an e-mail address ({why})"),
                    ));
                }
            }
            if let Some(l) = &u.language {
                if crate::i18n::Lang::parse(l).is_none() {
                    return Err(FieldError::at(
                        at("users", i, "language"),
                        format!(
                            "{l:?} is not a language the dashboard speaks; use \"zh-CN\" or \"en\""
                        ),
                    ));
                }
            }
            if !hashes.insert(h.as_str()) {
                return Err(FieldError::at(
                    at("users", i, "token_sha256"),
                    "is the same as another user's",
                ));
            }
            match u.role {
                Role::GridStaff => {
                    if let Some(c) = u.cells.iter().find(|c| !cells.contains(c.as_str())) {
                        return Err(FieldError::at(
                            at("users", i, "cells"),
                            format!("cell {c:?} is not in [[cells]]"),
                        ));
                    }
                }
                Role::PropertyManager => match u.company.as_deref() {
                    Some(c) if companies.contains(c) => {}
                    Some(c) => {
                        return Err(FieldError::at(
                            at("users", i, "company"),
                            format!("company {c:?} is not in [[companies]]"),
                        ))
                    }
                    None => {
                        return Err(FieldError::at(
                            at("users", i, "company"),
                            "a property manager needs a company",
                        ))
                    }
                },
                Role::Admin => {}
            }
        }
        Ok(())
    }

    /// Adds the directory's sites to the `[cells]` routing, refusing a site
    /// that the two map to different cells.
    pub fn route_into(&self, cells: &mut CellsConfig) -> Result<(), String> {
        for s in &self.sites {
            match cells.sites.iter().find(|e| e.site == s.id) {
                Some(e) if e.cell != s.cell => {
                    return Err(format!(
                    "site {:?} is in cell {:?} in [cells] but in {:?} in the directory; keep one",
                    s.id, e.cell, s.cell
                ))
                }
                Some(_) => {}
                None => cells.sites.push(SiteCell {
                    site: s.id.clone(),
                    cell: s.cell.clone(),
                }),
            }
        }
        Ok(())
    }

    /// The user whose token this is.
    pub fn authenticate(&self, token: &str) -> Option<&User> {
        let hash = token_sha256(token);
        self.users
            .iter()
            .find(|u| constant_time_eq(u.token_sha256.as_bytes(), hash.as_bytes()))
    }

    /// The user named `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// What `user` may see and act on.
    pub fn scope(&self, user: &User) -> Scope {
        match user.role {
            Role::Admin => Scope::All,
            Role::GridStaff => {
                let mut cells: Vec<String> = user.cells.clone();
                for c in &self.cells {
                    let named = c.on_duty.iter().chain(&c.backups).any(|n| *n == user.name);
                    if named && !cells.contains(&c.id) {
                        cells.push(c.id.clone());
                    }
                }
                Scope::Cells(cells)
            }
            Role::PropertyManager => Scope::Sites(
                self.sites
                    .iter()
                    .filter(|s| s.company.is_some() && s.company == user.company)
                    .map(|s| s.id.clone())
                    .collect(),
            ),
        }
    }

    /// Who is told about an alert of `cell` at `site` at an escalation level:
    /// 0 the cell's on-duty staff, 1 its backups, 2 the admins. The site's
    /// property managers are told at level 0 as well.
    pub fn recipients(&self, cell: &str, site: &str, level: i64) -> Vec<&User> {
        let by_name: HashMap<&str, &User> =
            self.users.iter().map(|u| (u.name.as_str(), u)).collect();
        let cell = self.cells.iter().find(|c| c.id == cell);
        let names: Vec<&str> = match level {
            0 => {
                let mut v: Vec<&str> = cell
                    .map(|c| c.on_duty.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                let company = self
                    .sites
                    .iter()
                    .find(|s| s.id == site)
                    .and_then(|s| s.company.as_deref());
                v.extend(
                    self.users
                        .iter()
                        .filter(|u| {
                            u.role == Role::PropertyManager
                                && company.is_some()
                                && u.company.as_deref() == company
                        })
                        .map(|u| u.name.as_str()),
                );
                v
            }
            1 => cell
                .map(|c| c.backups.iter().map(String::as_str).collect())
                .unwrap_or_default(),
            _ => self
                .users
                .iter()
                .filter(|u| u.role == Role::Admin)
                .map(|u| u.name.as_str())
                .collect(),
        };
        names
            .into_iter()
            .filter_map(|n| by_name.get(n).copied())
            .collect()
    }
}

/// What the directory keeps of a token (`token_sha256`): the lower-case
/// hex SHA-256, the same as `printf %s "$TOKEN" | sha256sum`. Public so that
/// tools writing a directory (the demo) need no hashing of their own.
pub fn token_sha256(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first difference, so response times do
/// not reveal how much of a token hash was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(t: &str) -> String {
        hex(&Sha256::digest(t.as_bytes()))
    }

    fn text() -> String {
        format!(
            r#"
[[cells]]
id = "cell-07"
on_duty = ["wang"]
backups = ["zhao"]

[[companies]]
id = "greenleaf"

[[sites]]
id = "yard-a"
cell = "cell-07"
company = "greenleaf"

[[users]]
name = "wang"
role = "grid_staff"
token_sha256 = "{}"

[[users]]
name = "zhao"
role = "grid_staff"
token_sha256 = "{}"

[[users]]
name = "chen"
role = "property_manager"
company = "greenleaf"
token_sha256 = "{}"

[[users]]
name = "root"
role = "admin"
token_sha256 = "{}"
"#,
            sha("w"),
            sha("z"),
            sha("c"),
            sha("r")
        )
    }

    #[test]
    fn the_example_directory_loads_and_its_example_tokens_work() {
        let text = include_str!("../../../config/directory.example.toml");
        let d = Directory::from_toml_str(text, "directory.example.toml").unwrap();
        let wang = d.authenticate("example-wang-li").unwrap();
        // wang.li is on duty in cell-07 and backup in cell-08.
        assert_eq!(
            d.scope(wang),
            Scope::Cells(vec!["cell-07".into(), "cell-08".into()])
        );
        let chen = d.authenticate("example-chen-hui").unwrap();
        assert_eq!(
            d.scope(chen),
            Scope::Sites(vec!["yard-a".into(), "yard-b".into()])
        );
        let mut cells = CellsConfig::default();
        d.route_into(&mut cells).unwrap();
        assert_eq!(cells.sites.len(), 3);
    }

    #[test]
    fn a_bad_time_zone_or_language_names_its_field() {
        let zone = text().replace(
            "company = \"greenleaf\"\n\n[[users]]",
            "company = \"greenleaf\"\ntime_zone = \"Europe/Berlin\"\n\n[[users]]",
        );
        let e = Directory::from_toml_str(&zone, "dir.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("time_zone") && e.contains("+08:00"), "{e}");
        let lang = text().replace("name = \"root\"\n", "name = \"root\"\nlanguage = \"fr\"\n");
        let e = Directory::from_toml_str(&lang, "dir.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("language") && e.contains("zh-CN"), "{e}");
        let good = text()
            .replace(
                "company = \"greenleaf\"\n\n[[users]]",
                "company = \"greenleaf\"\ntime_zone = \"+07:00\"\n\n[[users]]",
            )
            .replace("name = \"root\"\n", "name = \"root\"\nlanguage = \"en\"\n");
        let d = Directory::from_toml_str(&good, "dir.toml").unwrap();
        assert_eq!(d.sites[0].time_zone.as_deref(), Some("+07:00"));
        assert_eq!(d.user("root").unwrap().language.as_deref(), Some("en"));
    }

    #[test]
    fn tokens_map_to_users_and_users_to_scopes() {
        let d = Directory::from_toml_str(&text(), "dir.toml").unwrap();
        let wang = d.authenticate("w").unwrap();
        assert_eq!(d.scope(wang), Scope::Cells(vec!["cell-07".into()]));
        let chen = d.authenticate("c").unwrap();
        assert_eq!(d.scope(chen), Scope::Sites(vec!["yard-a".into()]));
        assert_eq!(d.scope(d.authenticate("r").unwrap()), Scope::All);
        assert!(d.authenticate("nope").is_none());
    }

    #[test]
    fn escalation_goes_from_on_duty_to_backups_to_admins() {
        let d = Directory::from_toml_str(&text(), "dir.toml").unwrap();
        let names = |l| {
            d.recipients("cell-07", "yard-a", l)
                .iter()
                .map(|u| u.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(0), ["wang", "chen"]);
        assert_eq!(names(1), ["zhao"]);
        assert_eq!(names(2), ["root"]);
    }

    #[test]
    fn a_reference_to_an_unknown_cell_names_file_line_and_field() {
        let t = text().replace("cell = \"cell-07\"", "cell = \"cell-08\"");
        let e = Directory::from_toml_str(&t, "dir.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("dir.toml:12:1: sites[0].cell"), "{e}");
    }

    #[test]
    fn an_email_that_is_not_an_address_names_the_user_entry() {
        let t = format!(
            "{}\n[[users]]\nname = \"li\"\nrole = \"admin\"\ntoken_sha256 = \"{}\"\nemail = \"li at example\"\n",
            text(),
            sha("li")
        );
        let e = Directory::from_toml_str(&t, "dir.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("users[4].email"), "{e}");
        assert!(e.contains("not an e-mail address"), "{e}");
        let ok = t.replace("li at example", "li@example.org");
        let d = Directory::from_toml_str(&ok, "dir.toml").unwrap();
        assert_eq!(
            d.user("li").unwrap().email.as_deref(),
            Some("li@example.org")
        );
    }

    #[test]
    fn directory_sites_join_the_routing_but_may_not_contradict_it() {
        let d = Directory::from_toml_str(&text(), "dir.toml").unwrap();
        let mut cells = CellsConfig::default();
        d.route_into(&mut cells).unwrap();
        assert_eq!(cells.sites[0].cell, "cell-07");
        cells.sites[0].cell = "cell-01".into();
        assert!(d.route_into(&mut cells).is_err());
    }
}
