//! API tests: the real router on a real folder and real SQLite in a tempdir.

mod corpus;
mod cors;
mod crash;
mod delete;
mod events;
mod fairness;
mod flow;
mod health;
mod helpers;
mod images;
mod inbox;
mod limits;
mod recipe;
mod spec;
mod uploads;
