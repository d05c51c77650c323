using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Trellis.Store.Tests.Contract;

/// <summary>
/// Put on a contract test class whose backend needs something the machine may lack (a server
/// binary): every contract test of that class is then reported as skipped with
/// <see cref="SkipReason"/>, rather than failing. The attribute is read per class, which a
/// plain <c>[Fact(Skip = …)]</c> on the shared base class cannot do.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true)]
public abstract class ContractPrerequisiteAttribute : Attribute
{
    /// <summary>Null when the backend can be tested here; otherwise why not.</summary>
    public abstract string? SkipReason { get; }

    internal static string? SkipReasonFor(ITestMethod method) =>
        method.TestClass.Class.ToRuntimeType()?.GetCustomAttributes<ContractPrerequisiteAttribute>(inherit: true).Select(a => a.SkipReason).FirstOrDefault(r => r is not null);
}

/// <summary>A contract <c>[Fact]</c>: skipped for a backend whose <see cref="ContractPrerequisiteAttribute"/> says so.</summary>
[XunitTestCaseDiscoverer("Trellis.Store.Tests.Contract.ContractFactDiscoverer", "Trellis.Store.Tests")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class ContractFactAttribute : FactAttribute;

/// <summary>A contract <c>[Theory]</c>: skipped for a backend whose <see cref="ContractPrerequisiteAttribute"/> says so.</summary>
[XunitTestCaseDiscoverer("Trellis.Store.Tests.Contract.ContractTheoryDiscoverer", "Trellis.Store.Tests")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class ContractTheoryAttribute : TheoryAttribute;

public sealed class ContractFactDiscoverer(IMessageSink diagnosticMessageSink) : FactDiscoverer(diagnosticMessageSink)
{
    private readonly IMessageSink _sink = diagnosticMessageSink;

    public override IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute)
    {
        if (ContractPrerequisiteAttribute.SkipReasonFor(testMethod) is { } reason)
        {
            return [new XunitSkippedDataRowTestCase(_sink, discoveryOptions.MethodDisplayOrDefault(), discoveryOptions.MethodDisplayOptionsOrDefault(), testMethod, reason)];
        }
        return base.Discover(discoveryOptions, testMethod, factAttribute);
    }
}

public sealed class ContractTheoryDiscoverer(IMessageSink diagnosticMessageSink) : TheoryDiscoverer(diagnosticMessageSink)
{
    public override IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo theoryAttribute) =>
        ContractPrerequisiteAttribute.SkipReasonFor(testMethod) is { } reason
            ? CreateTestCasesForSkip(discoveryOptions, testMethod, theoryAttribute, reason)
            : base.Discover(discoveryOptions, testMethod, theoryAttribute);
}
