// `strata serve`: stateless nodes over one object store and one etcd that serve sharded
// collections through Qdrant's REST API (docs/SERVE.md).
import Strata
