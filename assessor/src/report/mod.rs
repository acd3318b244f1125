//! Pages and tables for people, made from result files: what one result
//! says about its listing ([`listing`]), and that rendered as a
//! self-contained HTML page ([`html`], with [`chart`] for the eval's
//! threshold curve). The numbers come from [`crate::eval`]; this module
//! only shows them.

pub(crate) mod chart;
pub(crate) mod html;
pub(crate) mod listing;
