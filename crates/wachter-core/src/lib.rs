//! The pure core of wachter: what a target is, which addresses may be touched, in which
//! order they are visited, and what a scan records about each service.
//!
//! Nothing in this crate opens a socket, reads a clock or touches the file system; parsers
//! take `BufRead`s. That keeps every rule here testable with plain data, and it means the
//! scope decision ([`scope::ScopePolicy`]) is the same code wherever it is enforced.

pub mod addr;
pub mod assessment;
pub mod capped;
pub mod check;
pub mod csv_cell;
pub mod html;
pub mod import;
pub mod order;
pub mod ports;
pub mod record;
pub mod safety;
pub mod scope;
pub mod stamp;
pub mod targets;
