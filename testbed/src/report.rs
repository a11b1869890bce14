//! Reports of a run: JSON and JUnit XML.
