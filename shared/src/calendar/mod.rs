//! Calendar sync: the CRM's event model ([`model`]), the normalized form both sides are
//! compared in ([`normal`]), and the pure sync decision ([`decide`]).

pub mod decide;
pub mod model;
pub mod normal;
