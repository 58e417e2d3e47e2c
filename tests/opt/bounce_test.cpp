#include <gtest/gtest.h>

#include "lorahub/opt/optimizer.h"

namespace {

using lorahub::opt::bounce;

TEST(Bounce, IdentityInsideTheBox) {
  EXPECT_EQ(bounce(0.0, -1.5, 1.5), 0.0);
  EXPECT_EQ(bounce(1.25, -1.5, 1.5), 1.25);
  EXPECT_EQ(bounce(-1.5, -1.5, 1.5), -1.5);
  EXPECT_EQ(bounce(1.5, -1.5, 1.5), 1.5);
}

TEST(Bounce, MirrorsOnceAtTheCrossedBound) {
  EXPECT_DOUBLE_EQ(bounce(2.0, -1.5, 1.5), 1.0);    // 2 * 1.5 - 2
  EXPECT_DOUBLE_EQ(bounce(-1.75, -1.5, 1.5), -1.25);  // 2 * -1.5 + 1.75
  EXPECT_DOUBLE_EQ(bounce(4.0, -1.5, 1.5), -1.0);
  EXPECT_DOUBLE_EQ(bounce(1.2, 0.0, 1.0), 0.8);
}

TEST(Bounce, ClipsWhenTheMirrorImageLeavesTheBox) {
  // v more than one box width outside: nevergrad clips the mirrored value instead of bouncing again
  EXPECT_EQ(bounce(5.0, -1.5, 1.5), -1.5);
  EXPECT_EQ(bounce(-100.0, -1.5, 1.5), 1.5);
  EXPECT_EQ(bounce(1e300, -1.5, 1.5), -1.5);
}

TEST(Bounce, AlwaysInsideTheBox) {
  for (double v = -20.0; v <= 20.0; v += 0.01) {
    const double b = bounce(v, -1.5, 1.5);
    ASSERT_GE(b, -1.5) << v;
    ASSERT_LE(b, 1.5) << v;
  }
}

}  // namespace
