using System;
using System.Collections.Generic;
using System.Management.Automation;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace PsIpc.Tests
{
    /// <summary>
    /// FastCliXml claims to write what PSSerializer writes for flat records of note properties, and to step
    /// aside for everything else; its reader claims to build what PSSerializer.Deserialize builds from such a
    /// document and to step aside for anything else. These tests hold it to both claims. PSSerializer.Serialize
    /// indents its document and the fast path does not (indentation is not content: a value's own line breaks
    /// are escaped as _x000A_), so documents are compared with PSSerializer's indentation taken out.
    /// </summary>
    public sealed class FastCliXmlTests : IClassFixture<PowerShellEngine>
    {
        private readonly PowerShellEngine _engine;

        public FastCliXmlTests(PowerShellEngine engine) => _engine = engine;

        /// <summary>Records of the shape the fast path claims: note properties of plain scalar values.</summary>
        public static IEnumerable<object[]> ClaimedShapes() => Cases(
            "[pscustomobject]@{ Name = 'web01'; Port = 8080; Up = $true; Load = 0.75 }",
            "[pscustomobject]@{ Nothing = $null; Long = [long]5000000000; Money = [decimal]'12.3400'; Id = [guid]'0f8fad5b-d9cb-469f-a165-70867728950e' }",
            "[pscustomobject]@{ Utc = [datetime]::new(2024, 2, 29, 23, 59, 58, 123, [DateTimeKind]::Utc) }",
            "[pscustomobject]@{ Local = [datetime]::new(2024, 7, 1, 12, 0, 0, [DateTimeKind]::Local); Plain = [datetime]::new(2001, 1, 1) }",
            "[pscustomobject]@{ Min = [int]::MinValue; Max = [int]::MaxValue; LMin = [long]::MinValue; LMax = [long]::MaxValue; F = $false }",
            "[pscustomobject]@{ Tiny = 1e-300; Huge = 1.7976931348623157e308; Tenth = 0.1; Third = 1/3; Neg = -2.5 }",
            "[pscustomobject]@{ Dec = [decimal]::MaxValue; DecMin = [decimal]::MinValue; DecSmall = [decimal]'0.0000000000000000000000000001' }",
            "[pscustomobject]@{ Markup = 'a < b && c > d'; Entity = '&amp; stays text'; Unicode = 'héllo wörld ✓ 日本' }",
            "[pscustomobject]@{ Empty = ''; Spaces = '  padded  '; Underscore = 'snake_case_name' }",
            "[pscustomobject]@{ 'Name With Spaces' = 1; 'dotted.name' = 2 }",
            "$o = [pscustomobject]@{ A = 1 }; $o.pstypenames.Insert(0, 'Contoso.Server'); $o",
            "[pscustomobject]@{ PSTypeName = 'Contoso.Typed'; A = 'x' }",
            "1..3 | ForEach-Object { [pscustomobject]@{ Id = $_; Name = \"item$_\"; Square = $_ * $_ } } | Select-Object -Last 1",
            "Get-Date -Year 2020 -Month 3 -Day 4 | Select-Object -Property Year, Month, Day",
            "[pscustomobject]@{ Wrapped = (1..2 | ForEach-Object { \"w$_\" } | Select-Object -First 1) }");

        /// <summary>Values the fast path must leave to PSSerializer, whose documents the fast reader leaves too.</summary>
        public static IEnumerable<object[]> OtherShapes() => Cases(
            "[pscustomobject]@{ Inner = [pscustomobject]@{ X = 1 } }",
            "[pscustomobject]@{ Items = 1, 2, 3 }",
            "[pscustomobject]@{ Table = @{ a = 1 } }",
            "[pscustomobject]@{ Char = [char]'x' }",
            "[pscustomobject]@{ Span = [timespan]::FromSeconds(5) }",
            "[pscustomobject]@{ Byte = [byte]7; Short = [int16]-3; Single = [single]1.5 }",
            "[pscustomobject]@{ Tab = \"a`tb\" }",
            "[pscustomobject]@{ Escape = 'looks like _x0041_ an escape' }",
            "[pscustomobject]@{ Quote = 'say \"hi\"' }",
            "[pscustomobject]@{ Apostrophe = \"it's\" }",
            "[pscustomobject]@{ Emoji = 'smile 😀' }",
            "[pscustomobject]@{ 'a<b' = 1 }",
            "$o = [pscustomobject]@{ A = 1 }; $o.pstypenames.Insert(0, 'Generic<T>'); $o",
            "$v = 5 | Add-Member -NotePropertyName Tag -NotePropertyValue 'x' -PassThru -Force; [pscustomobject]@{ V = $v }",
            "@{ Hashtable = 1 }",
            "42",
            "'a string'",
            "[System.Net.IPEndPoint]::new([ipaddress]::Loopback, 8080)");

        /// <summary>
        /// Records with members other than note properties: the writer leaves them to PSSerializer, which writes
        /// each member's value as a plain property, so the document is a flat record the fast reader may read.
        /// </summary>
        public static IEnumerable<object[]> FlattenedShapes() => Cases(
            "$o = [pscustomobject]@{ A = 1 }; $o | Add-Member -MemberType ScriptProperty -Name B -Value { 2 }; $o",
            "$o = [pscustomobject]@{ A = 1 }; $o | Add-Member -MemberType AliasProperty -Name B -Value A; $o");

        /// <summary>PSSerializer.Serialize without its indentation: the document the fast path writes.</summary>
        internal static string Serialize(object? value, int depth) => Serialize(PSSerializer.Serialize(value, depth));

        /// <summary>A CliXml document without indentation.</summary>
        internal static string Serialize(string document) => Regex.Replace(document, "\r?\n *", string.Empty);

        private static IEnumerable<object[]> Cases(params string[] scripts)
        {
            foreach (string script in scripts) yield return new object[] { script };
        }

        [Theory]
        [MemberData(nameof(ClaimedShapes))]
        public void WritesExactlyWhatPSSerializerWrites(string script) => _engine.Run(() =>
        {
            PSObject value = _engine.Evaluate(script);
            foreach (int depth in new[] { 1, 2, 10 })
            {
                var sb = new StringBuilder();
                Assert.True(FastCliXml.TryWrite(value, depth, sb), $"the fast path refused {script} at depth {depth}");
                Assert.Equal(Serialize(value, depth), sb.ToString());
            }
        });

        [Theory]
        [MemberData(nameof(OtherShapes))]
        [MemberData(nameof(FlattenedShapes))]
        public void LeavesOtherShapesToPSSerializer(string script) => _engine.Run(() =>
        {
            PSObject value = _engine.Evaluate(script);
            Assert.False(FastCliXml.TryWrite(value, 2, new StringBuilder()), $"the fast path took {script}");
            using (var codec = new PayloadCodec())
            {
                // Not the fast path's document: PSSerializer's own, indentation and all.
                Assert.Equal(PSSerializer.Serialize(value, 2), Encoding.UTF8.GetString(codec.Encode(value, PayloadFormat.CliXml, 2, out _)));
            }
        });

        [Fact]
        public void WritesAnEmptyRecordThatArrivesAsPSSerializersDoes() => _engine.Run(() =>
        {
            // PSSerializer writes no <MS> element for a record without properties; the fast path writes an empty
            // one. Not the same text, so this shape is held to the weaker claim: both arrive alike.
            PSObject value = _engine.Evaluate("[pscustomobject]@{}");
            var sb = new StringBuilder();
            Assert.True(FastCliXml.TryWrite(value, 2, sb));
            AssertSameRecord(PSSerializer.Deserialize(PSSerializer.Serialize(value, 2)), PSSerializer.Deserialize(sb.ToString()));
            Assert.True(FastCliXml.TryRead(sb.ToString(), out object? fast));
            AssertSameRecord(PSSerializer.Deserialize(PSSerializer.Serialize(value, 2)), fast);
        });

        [Fact]
        public void LeavesDepthZeroToPSSerializer() => _engine.Run(() =>
        {
            PSObject value = _engine.Evaluate("[pscustomobject]@{ A = 1 }");
            Assert.False(FastCliXml.TryWrite(value, 0, new StringBuilder()));
        });

        [Fact]
        public void LeavesNullAndUnwrappedValuesToPSSerializer()
        {
            Assert.False(FastCliXml.TryWrite(null, 2, new StringBuilder()));
            Assert.False(FastCliXml.TryWrite(42, 2, new StringBuilder()));
            Assert.False(FastCliXml.TryWrite("text", 2, new StringBuilder()));
        }

        [Fact]
        public void WritesTheMembersTypeDataAddsToARecordsType() => _engine.Run(() =>
        {
            // Type data (Update-TypeData, types.ps1xml) can add properties to a record's type name; PSSerializer
            // writes them, so the document must have them whichever path it takes, for the first object of the
            // type and the ones after it.
            string type = "Contoso.Extended" + Guid.NewGuid().ToString("N");
            _engine.Invoke($"Update-TypeData -TypeName '{type}' -MemberType NoteProperty -MemberName Extra -Value 'from type data'");
            using (var codec = new PayloadCodec())
            {
                for (int i = 0; i < 3; i++)
                {
                    PSObject value = _engine.Evaluate($"$o = [pscustomobject]@{{ A = {i} }}; $o.pstypenames.Insert(0, '{type}'); $o");
                    string written = Compact(codec.Encode(value, PayloadFormat.CliXml, 2, out _));
                    Assert.Contains("<S N=\"Extra\">from type data</S>", written);
                    Assert.Equal(Serialize(value, 2), written);
                }
            }
        });

        [Theory]
        [MemberData(nameof(ClaimedShapes))]
        public void ReadsBackWhatPSSerializerDeserializes(string script) => _engine.Run(() =>
        {
            string xml = Serialize(_engine.Evaluate(script), 2);
            Assert.True(FastCliXml.TryRead(xml, out object? fast), $"the fast reader refused the document of {script}");
            AssertSameRecord(PSSerializer.Deserialize(xml), fast);
        });

        [Theory]
        [MemberData(nameof(ClaimedShapes))]
        public void RoundTripsItsOwnDocuments(string script) => _engine.Run(() =>
        {
            PSObject value = _engine.Evaluate(script);
            var sb = new StringBuilder();
            Assert.True(FastCliXml.TryWrite(value, 2, sb));
            Assert.True(FastCliXml.TryRead(sb.ToString(), out object? fast));
            AssertSameRecord(PSSerializer.Deserialize(PSSerializer.Serialize(value, 2)), fast);
        });

        [Theory]
        [MemberData(nameof(OtherShapes))]
        public void LeavesOtherDocumentsToPSSerializer(string script) => _engine.Run(() =>
        {
            string xml = Serialize(_engine.Evaluate(script), 2);
            Assert.False(FastCliXml.TryRead(xml, out object? value), xml);
            Assert.Null(value);
        });

        [Theory]
        [MemberData(nameof(FlattenedShapes))]
        public void ReadsFlattenedDocumentsAsPSSerializerDoes(string script) => _engine.Run(() =>
        {
            string xml = Serialize(_engine.Evaluate(script), 2);
            Assert.True(FastCliXml.TryRead(xml, out object? fast), xml);
            AssertSameRecord(PSSerializer.Deserialize(xml), fast);
        });

        [Theory]
        [InlineData("")]
        [InlineData("<Objs")]
        [InlineData("not xml at all")]
        public void LeavesGarbageToPSSerializer(string xml)
        {
            Assert.False(FastCliXml.TryRead(xml, out object? value));
            Assert.Null(value);
        }

        [Fact]
        public void LeavesAlteredDocumentsToPSSerializer() => _engine.Run(() =>
        {
            string xml = Serialize(_engine.Evaluate("[pscustomobject]@{ A = 1; B = 'x &amp; y' }"), 2);
            Assert.True(FastCliXml.TryRead(xml, out _));
            var altered = new[]
            {
                PSSerializer.Serialize(_engine.Evaluate("[pscustomobject]@{ A = 1; B = 'x &amp; y' }"), 2), // indented
                xml.Replace("<I32 N=\"A\">1</I32>", "<I32 N=\"A\">1</I32><I32 N=\"A\">2</I32>"), // a repeated name
                xml.Replace("&amp;amp;", "&quot;"),                               // an entity the writer never writes
                xml.Replace("<I32 N=\"A\">1</I32>", "<I32 N=\"A\">one</I32>"),  // a value that does not parse
                xml.Replace("<I32 N=\"A\">1</I32>", "<I32 N=\"A\">99999999999</I32>"), // out of range
                xml.Replace("<I32 N=\"A\">1</I32>", "<U8 N=\"A\">1</U8>"),        // a type it does not read
                xml.Substring(0, xml.Length - 1),
            };
            foreach (string document in altered)
            {
                Assert.False(FastCliXml.TryRead(document, out _), document);
            }
        });

        private static string Compact(byte[] payload) => Serialize(Encoding.UTF8.GetString(payload));

        private static void AssertSameRecord(object expected, object actual)
        {
            var e = Assert.IsType<PSObject>(expected);
            var a = Assert.IsType<PSObject>(actual);
            Assert.Equal(e.TypeNames, a.TypeNames);
            var expectedProperties = new List<PSPropertyInfo>(e.Properties);
            var actualProperties = new List<PSPropertyInfo>(a.Properties);
            Assert.Equal(expectedProperties.Count, actualProperties.Count);
            for (int i = 0; i < expectedProperties.Count; i++)
            {
                Assert.Equal(expectedProperties[i].Name, actualProperties[i].Name);
                Assert.Equal(expectedProperties[i].MemberType, actualProperties[i].MemberType);
                object? ev = expectedProperties[i].Value;
                object? av = actualProperties[i].Value;
                Assert.Equal(ev?.GetType(), av?.GetType());
                Assert.Equal(ev, av);
                if (ev is DateTime dt) Assert.Equal(dt.Kind, ((DateTime)av!).Kind); // the same type as ev, checked above
            }
            Assert.Equal(e.ToString(), a.ToString());
        }
    }
}
