// PostgresIdentityStore against a real PostgreSQL server: the IdentityStore contract.
#include "modulo/store/postgres/pg_identity_store.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "modulo/store/identity_store_contract.h"
#include "modulo/store/postgres/pg_metadata_store.h"
#include "modulo/store/postgres/pg_test_server.h"

namespace modulo::store::postgres {
namespace {

IdentityStoreFixture MakePostgresStores() {
  auto& server = SharedPgTestServer();
  auto url = server.CreateDatabase();
  if (!url) throw std::runtime_error(url.error().ToString());
  DatabaseOptions o;
  o.primary_url = *url;
  o.pool.size = 10;
  o.pool.max_overflow = 4;
  auto db = Database::Open(o);
  if (!db) throw std::runtime_error(db.error().ToString());
  std::shared_ptr<Database> shared(db->release(), [u = *url](Database* d) {
    delete d;
    SharedPgTestServer().DropDatabase(u);
  });
  IdentityStoreFixture f;
  f.identity = std::shared_ptr<IdentityStore>(new PostgresIdentityStore(*shared),
                                              [shared](IdentityStore* s) { delete s; });
  f.metadata = std::shared_ptr<MetadataStore>(new PostgresMetadataStore(*shared),
                                              [shared](MetadataStore* s) { delete s; });
  // PostgresMetadataStore keeps owner_type itself; the hook is never needed, but it is real.
  f.set_owner_type = [shared](const std::string& collection_id, const std::string& owner_type) {
    auto lease = shared->Primary();
    ASSERT_TRUE(lease) << lease.error().ToString();
    auto r = (*lease)->Exec("UPDATE collections SET owner_type = $1 WHERE id = $2",
                            Params().Add(owner_type).Add(collection_id));
    ASSERT_TRUE(r) << r.error().ToString();
  };
  return f;
}

INSTANTIATE_TEST_SUITE_P(Postgres, IdentityStoreContract, ::testing::Values(&MakePostgresStores));

}  // namespace
}  // namespace modulo::store::postgres
