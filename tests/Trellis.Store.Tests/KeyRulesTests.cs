namespace Trellis.Store.Tests;

public sealed class KeyRulesTests
{
    [Theory]
    [InlineData("/", "0")]
    [InlineData("/registry/pods/", "/registry/pods0")]
    [InlineData("/a/b", "/a/c")]
    [InlineData("/a\uD7FF", "/a\uE000")]
    [InlineData("/a\U0010FFFF", "/b")]
    [InlineData("/a\U0001F600", "/a\U0001F601")]
    public void PrefixEnd_is_the_least_string_above_every_extension_of_the_prefix(string prefix, string expected)
    {
        Assert.Equal(expected, KeyRules.PrefixEnd(prefix));
    }

    [Fact]
    public void Compare_orders_by_code_point_as_utf8_bytes_do()
    {
        string[] keys = ["/\U0001F600", "/\uFFFD", "/b", "/a/b", "/a", "/\uE000", "/\u00E9"];

        var byComparer = keys.Order(KeyRules.Comparer).ToArray();
        var byUtf8 = keys.OrderBy(k => Convert.ToHexString(System.Text.Encoding.UTF8.GetBytes(k)), StringComparer.Ordinal).ToArray();

        Assert.Equal(byUtf8, byComparer);
    }
}
