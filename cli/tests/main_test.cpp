#define BOOST_TEST_MODULE rill_cli
#include <boost/test/unit_test.hpp>
