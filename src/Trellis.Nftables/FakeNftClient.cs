namespace Trellis.Nftables;

/// <summary>
/// An in-memory <see cref="INftClient"/> for consumers' tests (no root, no nft). It does not interpret rules:
/// it keeps every applied transaction, and <see cref="Dump"/> returns the last one, so tests compare the text a
/// component would have sent. Tables are tracked only by their <c>add|create|delete|destroy table</c> lines:
/// <see cref="ListTable"/> answers with the last transaction that left the table in place (or what
/// <see cref="SetTable"/> put there, to simulate drift). Not thread-safe.
/// </summary>
public sealed class FakeNftClient : INftClient
{
    private readonly List<string> _transactions = [];
    private readonly Dictionary<(string Family, string Name), string> _tables = [];
    private readonly Queue<NftException> _failures = new();

    /// <summary>Every transaction applied successfully, oldest first.</summary>
    public IReadOnlyList<string> Transactions => _transactions;

    /// <summary>How many times <see cref="ListTable"/> was called.</summary>
    public int ListCount { get; private set; }

    /// <summary>The last transaction applied; empty when none was.</summary>
    public string Dump() => _transactions.Count == 0 ? string.Empty : _transactions[^1];

    /// <summary>The next <see cref="Apply"/> throws <paramref name="error"/> and, like a refused nft batch, changes nothing.</summary>
    public void FailNextApply(NftException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        _failures.Enqueue(error);
    }

    /// <summary>Replaces what <see cref="ListTable"/> returns for a table; null removes the table.</summary>
    public void SetTable(string family, string name, string? listing)
    {
        if (listing is null)
        {
            _tables.Remove((family, name));
        }
        else
        {
            _tables[(family, name)] = listing;
        }
    }

    public void Apply(string transaction)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        if (_failures.TryDequeue(out var error))
        {
            throw error;
        }
        var touched = new Dictionary<(string, string), bool>();
        foreach (var raw in transaction.Split('\n'))
        {
            var words = raw.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (words.Length >= 4 && words[1] == "table")
            {
                var key = (words[2], words[3].TrimEnd('{').Trim());
                switch (words[0])
                {
                    case "add" or "create" or "table":
                        touched[key] = true;
                        break;
                    case "delete" or "destroy":
                        touched[key] = false;
                        break;
                }
            }
        }
        _transactions.Add(transaction);
        foreach (var (key, exists) in touched)
        {
            SetTable(key.Item1, key.Item2, exists ? transaction : null);
        }
    }

    public string? ListTable(string family, string name, bool stateless = false)
    {
        ListCount++;
        return _tables.TryGetValue((family, name), out var text) ? text : null;
    }
}
