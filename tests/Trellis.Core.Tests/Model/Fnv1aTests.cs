using Trellis.Model;

namespace Trellis.Core.Tests.Model;

public sealed class Fnv1aTests
{
    // Published FNV-1a 64-bit vectors (for ASCII, hashing UTF-16 code units equals hashing bytes).
    [Theory]
    [InlineData("", 0xcbf29ce484222325UL)]
    [InlineData("a", 0xaf63dc4c8601ec8cUL)]
    [InlineData("foobar", 0x85944171f73967e8UL)]
    public void Matches_the_reference_vectors(string text, ulong expected) => Assert.Equal(expected, Fnv1a.Hash(text));
}
