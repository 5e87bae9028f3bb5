using System.Collections;
using System.Management.Automation;
using Xunit;

namespace PsIpc.Tests
{
    /// <summary>A .NET object graph: PSSerializer spends one level of -Depth on each object's properties.</summary>
    public sealed class TreeNode
    {
        public TreeNode(string name, TreeNode? child = null)
        {
            Name = name;
            Child = child;
        }

        public string Name { get; }

        public TreeNode? Child { get; }

        public override string ToString() => Name;

        public static TreeNode ThreeLevels() => new TreeNode("top", new TreeNode("middle", new TreeNode("leaf")));
    }

    /// <summary>
    /// DepthProbe finds the first property that CliXml at a -Depth turns into its ToString() text, by
    /// round-tripping the first object of each type: Send-IpcMessage and Write-SharedMemory warn with it.
    /// </summary>
    public sealed class DepthProbeTests : IClassFixture<PowerShellEngine>
    {
        private readonly PowerShellEngine _engine;

        public DepthProbeTests(PowerShellEngine engine) => _engine = engine;

        private string? FindCut(object value, int depth) => _engine.Run(() => new DepthProbe().FindCut(value, depth));

        private static PSObject Record(string name, object value)
        {
            var record = new PSObject();
            record.Properties.Add(new PSNoteProperty(name, value));
            return record;
        }

        [Theory]
        [InlineData(1, "Child")]
        [InlineData(2, "Child.Child")]
        public void NamesThePathOfTheFirstPropertyThatArrivesAsText(int depth, string path)
        {
            Assert.Equal(path, FindCut(PSObject.AsPSObject(TreeNode.ThreeLevels()), depth));
        }

        [Fact]
        public void NamesNothingWhenTheDepthIsEnough()
        {
            Assert.Null(FindCut(PSObject.AsPSObject(TreeNode.ThreeLevels()), 3));
        }

        [Fact]
        public void AFlatRecordIsNeverCut()
        {
            Assert.Null(FindCut(_engine.Evaluate("[pscustomobject]@{ Name = 'web01'; Port = 8080; When = Get-Date }"), 1));
        }

        [Fact]
        public void RecordsAndDictionariesSpendNoDepth()
        {
            Assert.Null(FindCut(_engine.Evaluate("[pscustomobject]@{ Inner = [pscustomobject]@{ Leaf = [pscustomobject]@{ X = 1 } }; Map = @{ k = @{ k2 = 2 } } }"), 1));
            Assert.Equal("Tree.Child", FindCut(Record("Tree", TreeNode.ThreeLevels()), 1));
        }

        [Fact]
        public void FollowsArraysWithTheItemIndex()
        {
            Assert.Equal("Items[1].Child", FindCut(Record("Items", new object[] { 1, TreeNode.ThreeLevels() }), 1));
        }

        [Fact]
        public void FollowsDictionariesByKey()
        {
            Assert.Equal("Outer.Child", FindCut(PSObject.AsPSObject(new Hashtable { ["Outer"] = TreeNode.ThreeLevels() }), 1));
        }

        [Fact]
        public void ScalarsAreNeverCut()
        {
            Assert.Null(FindCut(_engine.Evaluate(
                "[pscustomobject]@{ When = [datetime]::new(2020, 1, 1); Span = [timespan]::FromMinutes(1); Id = [guid]::NewGuid(); Uri = [uri]'https://example.com/'; Version = [version]'1.2.3'; Bytes = [byte[]](1, 2) }"), 1));
        }

        [Fact]
        public void ProbesEachTypeOnceAndStaysQuietAfter() => _engine.Run(() =>
        {
            var probe = new DepthProbe();
            Assert.Equal("Child", probe.FindCut(PSObject.AsPSObject(TreeNode.ThreeLevels()), 1));
            Assert.Null(probe.FindCut(PSObject.AsPSObject(TreeNode.ThreeLevels()), 1));
            // Another type is probed on its own.
            Assert.Equal("Tree.Child", probe.FindCut(Record("Tree", TreeNode.ThreeLevels()), 1));
        });

        [Fact]
        public void LooksOnlyAtPowerShellObjects()
        {
            var probe = new DepthProbe();
            Assert.Null(probe.FindCut(null, 1));
            Assert.Null(probe.FindCut(42, 1));
            Assert.Null(probe.FindCut(TreeNode.ThreeLevels(), 1));
        }

        [Fact]
        public void ThePathItNamesArrivesAsText() => _engine.Run(() =>
        {
            PSObject value = Record("Tree", TreeNode.ThreeLevels());
            string? path = new DepthProbe().FindCut(value, 2);
            Assert.NotNull(path);
            object? copy = PSSerializer.Deserialize(PSSerializer.Serialize(value, 2));
            foreach (string step in path.Split('.')) copy = PSObject.AsPSObject(copy).Properties[step].Value;
            Assert.Equal("leaf", Assert.IsType<string>(PSObject.AsPSObject(copy).BaseObject));
        });
    }
}
