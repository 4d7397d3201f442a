//! Only a home for the `cases` test target; the cases are the `*.toml` files here.
