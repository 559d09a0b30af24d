// The library's users import one module, `Strata`; the lower layers' public types (errors, schema,
// metric, search hits) are part of its API, so they are re-exported here.
@_exported import StrataFormat
@_exported import StrataIndex
