//! OpenAPI schemas of the wire types whose JSON form is written by hand (a custom `Serialize`),
//! so a derive cannot see it. Only built with the `openapi` feature (the gateway's document);
//! the WASM console never compiles this.

use crate::resources::{NumText, Resources};
use crate::vfolders::Permission;
use std::borrow::Cow;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// The wire form of [`Resources`] (see its `Serialize`).
#[derive(ToSchema)]
#[allow(dead_code)]
struct ResourcesWire {
    /// CPU cores as a decimal string, e.g. `"0.5"`.
    cpu: String,
    /// Memory in bytes.
    mem: u64,
    /// Whole GPUs.
    gpu: u32,
    /// Fractional GPU as a decimal string of devices, e.g. `"0.25"`.
    gpu_shares: String,
}

impl PartialSchema for Resources {
    fn schema() -> RefOr<Schema> {
        ResourcesWire::schema()
    }
}

impl ToSchema for Resources {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Resources")
    }
}

impl PartialSchema for NumText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Number]))
            .description(Some(
                "A number, or a string holding one (with a unit where the field takes one).",
            ))
            .into()
    }
}

impl ToSchema for NumText {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NumText")
    }
}

impl PartialSchema for Permission {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["RO", "RW", "WD", "OWNER"]))
            .description(Some(
                "What a user may do with a folder: RO read, RW read and write, WD write and delete, OWNER everything.",
            ))
            .into()
    }
}

impl ToSchema for Permission {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Permission")
    }
}
