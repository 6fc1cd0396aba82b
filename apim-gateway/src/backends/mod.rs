//! Backend entities (learn.microsoft.com/azure/api-management/backends):
//! single backends with their URL, credentials and circuit breaker, and
//! load-balanced pools of them. `set-backend-service backend-id` names one;
//! `forward-request` asks it for a member and sends the request there.

mod breaker;
mod duration;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, bail};

pub use breaker::Breaker;
pub use duration::parse_iso8601;

use crate::config;
use crate::policy::NamedValues;

/// A single backend.
pub struct Single {
    /// Its id.
    pub id: String,
    /// Base URL, no trailing slash.
    pub url: String,
    /// Headers added to every request, named values substituted.
    pub header_credentials: Vec<(String, Vec<String>)>,
    /// Query parameters added to every request.
    pub query_credentials: Vec<(String, Vec<String>)>,
    /// Its circuit breaker, if it has one.
    pub breaker: Option<Breaker>,
}

/// What a backend id names.
pub enum Backend {
    /// One service.
    Single(Arc<Single>),
    /// Members by priority and weight.
    Pool(Vec<(Arc<Single>, u32, u32)>),
}

/// Every backend, by id.
pub struct Backends(BTreeMap<String, Backend>);

/// Why no member can take a request.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// No backend has the id.
    #[error("no backend has the id {0:?}")]
    Unknown(String),
    /// Every member's breaker is open.
    #[error("every member of {0:?} has its circuit breaker open")]
    AllOpen(String),
}

impl Backends {
    /// Builds them from the local file, named values substituted in the
    /// credentials; `gateway_url` for `${gatewayUrl}`.
    pub fn new(
        backends: &BTreeMap<String, config::Backend>,
        named: &NamedValues,
        gateway_url: &str,
    ) -> anyhow::Result<Self> {
        let mut singles = BTreeMap::new();
        for (id, backend) in backends {
            if let config::Backend::Single {
                url,
                credentials,
                circuit_breaker,
            } = backend
            {
                let substitute = |list: &BTreeMap<String, Vec<String>>| {
                    list.iter()
                        .map(|(name, values)| {
                            let values = values
                                .iter()
                                .map(|v| {
                                    named.substitute(v).map_err(|undefined| {
                                        anyhow::anyhow!(
                                            "backend {id}: the named value `{}` is not defined",
                                            undefined.name
                                        )
                                    })
                                })
                                .collect::<anyhow::Result<Vec<_>>>()?;
                            Ok((name.clone(), values))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()
                };
                let breaker = match circuit_breaker {
                    None => None,
                    Some(cb) => match cb.rules.as_slice() {
                        [rule] => {
                            Some(Breaker::new(rule).with_context(|| format!("backend {id}"))?)
                        }
                        _ => bail!("backend {id}: a circuit breaker takes exactly one rule"),
                    },
                };
                let url = url
                    .resolve(gateway_url)
                    .with_context(|| format!("backend {id}: url"))?;
                singles.insert(
                    id.clone(),
                    Arc::new(Single {
                        id: id.clone(),
                        url: url.trim_end_matches('/').to_owned(),
                        header_credentials: sent(substitute(&credentials.header)?),
                        query_credentials: sent(substitute(&credentials.query)?),
                        breaker,
                    }),
                );
            }
        }
        let mut all = BTreeMap::new();
        for (id, backend) in backends {
            let entry = match backend {
                config::Backend::Single { .. } => match singles.get(id) {
                    Some(single) => Backend::Single(single.clone()),
                    None => bail!("backend {id} was not built"),
                },
                config::Backend::Pool { pool } => {
                    let members = pool
                        .services
                        .iter()
                        .map(|member| match singles.get(&member.id) {
                            Some(single) => Ok((single.clone(), member.priority, member.weight)),
                            None => bail!(
                                "pool {id}: its member {:?} is not a single backend",
                                member.id
                            ),
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    if members.is_empty() {
                        bail!("pool {id} has no members");
                    }
                    Backend::Pool(members)
                }
            };
            all.insert(id.clone(), entry);
        }
        Ok(Backends(all))
    }

    /// Whether `id` is a backend.
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }

    /// The member to send the next request for `id` to: of the best
    /// priority whose breaker is closed, picked by weight among equals.
    pub fn pick(&self, id: &str) -> Result<Arc<Single>, Unavailable> {
        let backend = self
            .0
            .get(id)
            .ok_or_else(|| Unavailable::Unknown(id.to_owned()))?;
        let members = match backend {
            Backend::Single(single) => {
                return if single.breaker.as_ref().is_some_and(Breaker::is_open) {
                    Err(Unavailable::AllOpen(id.to_owned()))
                } else {
                    Ok(single.clone())
                };
            }
            Backend::Pool(members) => members,
        };
        let closed = members
            .iter()
            .filter(|(single, _, _)| !single.breaker.as_ref().is_some_and(Breaker::is_open));
        let Some(best) = closed.clone().map(|(_, priority, _)| *priority).min() else {
            return Err(Unavailable::AllOpen(id.to_owned()));
        };
        let candidates: Vec<_> = closed
            .filter(|(_, priority, _)| *priority == best)
            .collect();
        let total: u32 = candidates
            .iter()
            .map(|(_, _, weight)| (*weight).max(1))
            .sum();
        let mut ticket = fastrand::u32(0..total.max(1));
        for (single, _, weight) in &candidates {
            let weight = (*weight).max(1);
            if ticket < weight {
                return Ok(single.clone());
            }
            ticket -= weight;
        }
        candidates
            .first()
            .map(|(single, _, _)| single.clone())
            .ok_or_else(|| Unavailable::AllOpen(id.to_owned()))
    }
}

/// Credentials whose named values are all empty are not sent: the Bicep
/// deploys none with backendAuth managedIdentity, and the local file's key
/// is then left empty.
fn sent(credentials: Vec<(String, Vec<String>)>) -> Vec<(String, Vec<String>)> {
    credentials
        .into_iter()
        .filter(|(_, values)| values.iter().any(|v| !v.is_empty()))
        .collect()
}
