//! Pages for people, made from result files: the listings
//! ([`crate::listing`]) and the eval's numbers ([`crate::eval`]) rendered as
//! self-contained HTML ([`html`], with [`chart`] for the eval's threshold
//! curve). This module only shows; it computes nothing.

pub(crate) mod chart;
pub(crate) mod html;
