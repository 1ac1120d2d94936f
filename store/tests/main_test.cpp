#define BOOST_TEST_MODULE rill_store
#include <boost/test/unit_test.hpp>
