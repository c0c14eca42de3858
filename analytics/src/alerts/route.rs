//! Routing: which grid cell's staff handle a site's alerts.
//!
//! The cell is part of the alert topic (`alerts/{cell}/{severity}`), so staff
//! subscribe to their cell only. A site nobody mapped still produces alerts —
//! they go to the default cell, where someone will notice the gap in the
//! directory, rather than being dropped.

use crate::toml_file::{locate::FieldPath, FieldError};
use gridwatch_telemetry::ids::validate_id;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The `[cells]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CellsConfig {
    /// The cell for sites not listed in `sites`.
    pub default: String,
    /// One `[[cells.sites]]` entry per site.
    pub sites: Vec<SiteCell>,
}

/// One `[[cells.sites]]` entry: a site and the grid cell it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteCell {
    /// The site id, as the gateways report it.
    pub site: String,
    /// The grid cell id; becomes a topic level.
    pub cell: String,
}

impl Default for CellsConfig {
    fn default() -> Self {
        Self {
            default: "unassigned".into(),
            sites: Vec::new(),
        }
    }
}

impl CellsConfig {
    /// Checks ids (they become topic levels) and refuses a site listed twice,
    /// which would make the routing depend on the order of the file.
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_id(&self.default).map_err(|m| FieldError::new("default", m))?;
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, entry) in self.sites.iter().enumerate() {
            let at = |key: &str| FieldPath::keys(&["sites"]).index(i).key(key);
            validate_id(&entry.site).map_err(|m| FieldError::at(at("site"), m))?;
            validate_id(&entry.cell).map_err(|m| FieldError::at(at("cell"), m))?;
            if let Some(first) = seen.insert(entry.site.as_str(), i) {
                return Err(FieldError::at(
                    at("site"),
                    format!(
                        "site {:?} is already mapped by sites[{first}]; list each site once",
                        entry.site
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Looks up the cell of a site.
#[derive(Debug, Clone)]
pub struct CellRouter {
    default: String,
    by_site: HashMap<String, String>,
}

impl CellRouter {
    /// A router for a (validated) `[cells]` section.
    pub fn new(config: &CellsConfig) -> Self {
        Self {
            default: config.default.clone(),
            by_site: config
                .sites
                .iter()
                .map(|e| (e.site.clone(), e.cell.clone()))
                .collect(),
        }
    }

    /// The cell whose staff handle `site`, or the default cell.
    pub fn cell_for(&self, site: &str) -> &str {
        self.by_site
            .get(site)
            .map_or(self.default.as_str(), String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CellsConfig {
        CellsConfig {
            default: "unassigned".into(),
            sites: vec![SiteCell {
                site: "yard-a".into(),
                cell: "cell-07".into(),
            }],
        }
    }

    #[test]
    fn mapped_sites_go_to_their_cell_and_others_to_the_default() {
        let r = CellRouter::new(&config());
        assert_eq!(r.cell_for("yard-a"), "cell-07");
        assert_eq!(r.cell_for("yard-b"), "unassigned");
    }

    #[test]
    fn a_site_listed_twice_is_refused() {
        let mut c = config();
        c.sites.push(SiteCell {
            site: "yard-a".into(),
            cell: "cell-08".into(),
        });
        let e = c.validate().unwrap_err();
        assert_eq!(e.path.to_string(), "sites[1].site");
    }

    #[test]
    fn a_cell_that_is_not_one_topic_level_is_refused() {
        let mut c = config();
        c.default = "cell/#".into();
        assert_eq!(c.validate().unwrap_err().path.to_string(), "default");
    }
}
