// Loading <db>/projections/*.sql into a registry (core/projection_loader.h):
// real files in a temp directory.
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/projection_loader.h"
#include "core/tests/projection_test_util.h"

using namespace rill;
using namespace rill::projection_testing;

namespace {

void Write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string ProjectionFile(const std::string& name) { return "-- rill projection: " + name + "\n-- on A\nSELECT 1;\n"; }

}  // namespace

BOOST_AUTO_TEST_SUITE(projection_loader)

BOOST_AUTO_TEST_CASE(every_sql_file_becomes_a_store_projection_naming_its_file) {
  TempDir dir;
  std::string pdir = dir.path() + "/projections";
  std::filesystem::create_directories(pdir + "/nested");
  Write(pdir + "/nested/deeper.sql", ProjectionFile("deeper"));  // not read: one level only
  Write(pdir + "/b.sql", ProjectionFile("beta"));
  Write(pdir + "/a.sql", ProjectionFile("alpha"));
  Write(pdir + "/notes.txt", "not a projection");
  Write(pdir + "/c.sql.bak", "not a projection either");
  ProjectionRegistry reg;
  BOOST_REQUIRE(LoadProjectionDirectory(pdir, &reg).ok());
  BOOST_REQUIRE(reg.entries().size() == 2u);
  const ProjectionRegistry::Entry* alpha = reg.Find("alpha");
  BOOST_REQUIRE(alpha != nullptr);
  BOOST_TEST((alpha->source == ProjectionRegistry::Source::kStore));
  BOOST_TEST(alpha->file == pdir + "/a.sql");
  BOOST_TEST(std::string(alpha->projection->kind()) == "sql");
  BOOST_TEST(reg.Find("beta")->file == pdir + "/b.sql");
  BOOST_TEST(reg.Find("deeper") == nullptr);
}

BOOST_AUTO_TEST_CASE(a_missing_directory_holds_none) {
  TempDir dir;
  ProjectionRegistry reg;
  BOOST_TEST(LoadProjectionDirectory(dir.path() + "/projections", &reg).ok());
  BOOST_TEST(reg.entries().empty());
}

BOOST_AUTO_TEST_CASE(files_are_read_in_name_order_and_a_bad_one_is_named) {
  TempDir dir;
  std::string pdir = dir.path() + "/projections";
  std::filesystem::create_directories(pdir);
  Write(pdir + "/z_bad.sql", "-- rill projection: zed\n-- on A\nSELECT :nosuch.param;\n");
  Write(pdir + "/m_bad.sql", "no header at all\n");
  Write(pdir + "/a_good.sql", ProjectionFile("good"));
  ProjectionRegistry reg;
  Status s = LoadProjectionDirectory(pdir, &reg);
  BOOST_TEST((s.code() == Code::kInvalidArgument));
  BOOST_TEST(s.message().rfind(pdir + "/m_bad.sql:", 0) == 0u, s.message());
  BOOST_TEST(reg.Find("good") != nullptr);  // read before the bad one
}

BOOST_AUTO_TEST_CASE(a_name_already_registered_is_a_conflict) {
  TempDir dir;
  std::string pdir = dir.path() + "/projections";
  std::filesystem::create_directories(pdir);
  Write(pdir + "/mine.sql", ProjectionFile("mine"));
  ProjectionRegistry reg;
  CppProjectionSpec spec;
  spec.name = "mine";
  BOOST_REQUIRE(reg.Add(MakeCppProjection(std::move(spec)), ProjectionRegistry::Source::kBuiltIn).ok());
  Status s = LoadProjectionDirectory(pdir, &reg);
  BOOST_TEST(s.IsConflict());
  BOOST_TEST(s.message() == "a built-in projection named mine already exists");
  BOOST_TEST(reg.entries().size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_path_that_is_not_a_directory_is_an_io_error) {
  TempDir dir;
  std::string file = dir.path() + "/projections";
  Write(file, "a file, not a directory");
  ProjectionRegistry reg;
  Status s = LoadProjectionDirectory(file, &reg);
  BOOST_TEST((s.code() == Code::kIOError));
  BOOST_TEST(s.message().rfind("cannot list " + file + ": ", 0) == 0u, s.message());
}

BOOST_AUTO_TEST_SUITE_END()
