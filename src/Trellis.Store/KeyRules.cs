using System.Text;

namespace Trellis.Store;

/// <summary>
/// What a key, prefix, value and revision argument must look like, and the one key order every
/// backend uses. Checked before any I/O so bad input never reaches a backend (DESIGN §9).
/// </summary>
internal static class KeyRules
{
    /// <summary>Keys longer than this (in UTF-8 bytes) are refused: Kubernetes' own keys are far shorter.</summary>
    public const int MaxKeyBytes = 4096;

    /// <summary>etcd's default request limit (--max-request-bytes, 1.5 MiB); a larger value would not move to etcd.</summary>
    public const int MaxValueBytes = 1536 * 1024;

    /// <summary>A lease TTL beyond this is a mistake (a unit mix-up), not a lease.</summary>
    public static readonly TimeSpan MaxLeaseTtl = TimeSpan.FromDays(366);

    public static void ValidateKey(string key, string paramName = "key") => ValidatePath(key, paramName, "key");

    /// <summary>A prefix follows the key rules; "/" selects everything.</summary>
    public static void ValidatePrefix(string prefix, string paramName = "prefix") => ValidatePath(prefix, paramName, "prefix");

    public static void ValidateValue(ReadOnlyMemory<byte> value, string paramName = "value")
    {
        if (value.Length > MaxValueBytes)
        {
            throw new ArgumentException($"value is {value.Length} bytes; the store accepts at most {MaxValueBytes} bytes per value", paramName);
        }
    }

    public static void ValidateExpectedRevision(long expectedModRevision, bool zeroMeansAny, string paramName = "expectedModRevision")
    {
        if (expectedModRevision < 0 || (expectedModRevision == 0 && !zeroMeansAny))
        {
            throw new ArgumentOutOfRangeException(paramName, expectedModRevision,
                zeroMeansAny ? "expected ModRevision must be 0 (unconditional) or a revision > 0" : "expected ModRevision must be > 0 (the ModRevision the caller read)");
        }
    }

    public static void ValidateLeaseId(long leaseId, bool zeroMeansNone, string paramName = "leaseId")
    {
        if (leaseId < 0 || (leaseId == 0 && !zeroMeansNone))
        {
            throw new ArgumentOutOfRangeException(paramName, leaseId, zeroMeansNone ? "lease id must be 0 (none) or a granted lease id" : "lease id must be a granted lease id (> 0)");
        }
    }

    public static void ValidateFromRevision(long fromRevision, string paramName = "fromRevision")
    {
        if (fromRevision < 0)
        {
            throw new ArgumentOutOfRangeException(paramName, fromRevision, "watch revision must be ≥ 0 (0 = from the beginning of retained history)");
        }
    }

    public static void ValidateTtl(TimeSpan ttl, string paramName = "ttl")
    {
        if (ttl < TimeSpan.FromMilliseconds(1) || ttl > MaxLeaseTtl)
        {
            throw new ArgumentOutOfRangeException(paramName, ttl, $"lease TTL must be between 1 ms and {MaxLeaseTtl.TotalDays} days");
        }
    }

    /// <summary>
    /// Orders keys by Unicode code point, which is the order of their UTF-8 bytes: what SQLite's
    /// BINARY collation and etcd compare. Ordinal UTF-16 order differs for characters above U+FFFF
    /// (surrogates sort below U+E000…U+FFFF), so it cannot be used where backends must agree.
    /// </summary>
    public static int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y))
        {
            return 0;
        }
        if (x is null)
        {
            return -1;
        }
        if (y is null)
        {
            return 1;
        }
        int n = Math.Min(x.Length, y.Length);
        for (int i = 0; i < n; i++)
        {
            char a = x[i];
            char b = y[i];
            if (a != b)
            {
                // Lift surrogates above every other BMP code unit: then UTF-16 unit order equals code point order.
                return Lift(a).CompareTo(Lift(b));
            }
        }
        return x.Length.CompareTo(y.Length);

        static int Lift(char c) => char.IsSurrogate(c) ? c + 0x10000 : c;
    }

    public static readonly IComparer<string> Comparer = Comparer<string>.Create(Compare);

    /// <summary>
    /// The smallest string greater than every string that starts with <paramref name="prefix"/>,
    /// in code point order: the exclusive upper bound of a range scan (etcd's "range_end").
    /// Valid prefixes always have one, because they start with '/' which can be incremented.
    /// </summary>
    public static string PrefixEnd(string prefix)
    {
        var runes = new List<Rune>();
        foreach (var rune in prefix.EnumerateRunes())
        {
            runes.Add(rune);
        }
        while (runes.Count > 0)
        {
            int last = runes[^1].Value;
            runes.RemoveAt(runes.Count - 1);
            if (last == 0x10FFFF)
            {
                continue; // nothing follows U+10FFFF: carry into the previous character
            }
            int next = last == 0xD7FF ? 0xE000 : last + 1; // skip the surrogate range, which holds no scalar values
            var sb = new StringBuilder(prefix.Length + 1);
            foreach (var r in runes)
            {
                sb.Append(r.ToString());
            }
            sb.Append(new Rune(next).ToString());
            return sb.ToString();
        }
        throw new ArgumentException($"prefix '{prefix}' has no upper bound", nameof(prefix));
    }

    private static void ValidatePath(string value, string paramName, string what)
    {
        ArgumentNullException.ThrowIfNull(value, paramName);
        if (value.Length == 0)
        {
            throw new ArgumentException($"{what} must not be empty; {what}s are absolute paths such as /registry/pods/demo/web-1", paramName);
        }
        if (value[0] != '/')
        {
            throw new ArgumentException($"{what} '{value}' must start with '/' (e.g. /registry/pods/demo/web-1)", paramName);
        }
        for (int i = 0; i < value.Length; i++)
        {
            if (char.IsControl(value[i]))
            {
                throw new ArgumentException($"{what} '{value.Replace("\0", "\\0", StringComparison.Ordinal)}' contains control character U+{(int)value[i]:X4} at index {i}", paramName);
            }
        }
        for (int i = 0; i < value.Length; i++)
        {
            if (char.IsHighSurrogate(value[i]) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(value[i]))
            {
                // A lone surrogate has no UTF-8 form: it could not round-trip through SQLite or etcd.
                throw new ArgumentException($"{what} contains an unpaired UTF-16 surrogate at index {i} (not valid Unicode)", paramName);
            }
        }
        int bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes > MaxKeyBytes)
        {
            throw new ArgumentException($"{what} is {bytes} bytes long; at most {MaxKeyBytes} are allowed", paramName);
        }
    }
}
