using System;
using System.Collections;
using System.Management.Automation;
using System.Text;
using System.Xml;
using PsIpc.Transport;
using PsIpc.Transport.Framing;
using Xunit;

namespace PsIpc.Tests
{
    /// <summary>
    /// PayloadCodec: what each -Format writes, what Auto picks, and what Receive-IpcMessage gets back, from
    /// messages that really crossed a channel (the sender decides whether CliXml is decoded).
    /// </summary>
    public sealed class PayloadCodecTests : IClassFixture<PowerShellEngine>, IClassFixture<Senders>
    {
        private readonly PowerShellEngine _engine;
        private readonly Senders _senders;

        public PayloadCodecTests(PowerShellEngine engine, Senders senders)
        {
            _engine = engine;
            _senders = senders;
        }

        private static byte[] Encode(object? value, PayloadFormat format, out MessageFormat wire, int depth = 2)
        {
            using (var codec = new PayloadCodec()) return codec.Encode(value, format, depth, out wire);
        }

        private static object? Decode(IpcMessage message)
        {
            using (var codec = new PayloadCodec()) return codec.Decode(message);
        }

        [Fact]
        public void AutoSendsAStringAsText()
        {
            byte[] payload = Encode("héllo ✓", PayloadFormat.Auto, out MessageFormat wire);
            Assert.Equal(MessageFormat.Text, wire);
            Assert.Equal(Encoding.UTF8.GetBytes("héllo ✓"), payload);
        }

        [Fact]
        public void AutoSendsAWrappedStringAsText()
        {
            byte[] payload = Encode(PSObject.AsPSObject("wrapped"), PayloadFormat.Auto, out MessageFormat wire);
            Assert.Equal(MessageFormat.Text, wire);
            Assert.Equal("wrapped", Encoding.UTF8.GetString(payload));
        }

        [Fact]
        public void AutoSendsAByteArrayAsItsBytes()
        {
            var bytes = new byte[] { 0, 1, 127, 128, 255 };
            Assert.Equal(bytes, Encode(bytes, PayloadFormat.Auto, out MessageFormat wire));
            Assert.Equal(MessageFormat.Bytes, wire);
            Assert.Equal(bytes, Encode(PSObject.AsPSObject(bytes), PayloadFormat.Auto, out wire));
            Assert.Equal(MessageFormat.Bytes, wire);
        }

        [Fact]
        public void AutoSendsAnyOtherValueAsPSSerializersCliXml() => _engine.Run(() =>
        {
            var values = new object?[]
            {
                42, 1.5, true, null, new DateTime(2024, 5, 6, 7, 8, 9, DateTimeKind.Utc), new Hashtable { ["a"] = 1 },
                new object[] { 1, "two" }, _engine.Evaluate("[pscustomobject]@{ Name = 'web01'; Port = 8080 }"),
            };
            foreach (object? value in values)
            {
                byte[] payload = Encode(value, PayloadFormat.Auto, out MessageFormat wire);
                Assert.Equal(MessageFormat.CliXml, wire);
                // PSSerializer's document; the fast path writes it without the indentation.
                Assert.Equal(FastCliXmlTests.Serialize(value, 2), FastCliXmlTests.Serialize(Encoding.UTF8.GetString(payload)));
            }
        });

        [Fact]
        public void TextConvertsAValueAsPowerShellDoes()
        {
            Assert.Equal("42", Encoding.UTF8.GetString(Encode(42, PayloadFormat.Text, out MessageFormat wire)));
            Assert.Equal(MessageFormat.Text, wire);
            Assert.Equal("1 2 3", Encoding.UTF8.GetString(Encode(new object[] { 1, 2, 3 }, PayloadFormat.Text, out _)));
            Assert.Empty(Encode(null, PayloadFormat.Text, out _));
        }

        [Fact]
        public void BytesConvertsWhatPowerShellConvertsToByteArrays()
        {
            Assert.Equal(new byte[] { 1, 2, 3 }, Encode(new object[] { 1, 2, 3 }, PayloadFormat.Bytes, out MessageFormat wire));
            Assert.Equal(MessageFormat.Bytes, wire);
            // Send-IpcMessage reports this as EncodeFailed.
            Assert.Throws<PSInvalidCastException>(() => Encode("abc", PayloadFormat.Bytes, out _));
        }

        [Fact]
        public void CliXmlFormatSerializesStringsToo()
        {
            byte[] payload = Encode("text", PayloadFormat.CliXml, out MessageFormat wire);
            Assert.Equal(MessageFormat.CliXml, wire);
            Assert.Equal(PSSerializer.Serialize("text", 2), Encoding.UTF8.GetString(payload));
        }

        [Fact]
        public void CliXmlHonoursTheDepth() => _engine.Run(() =>
        {
            PSObject nested = _engine.Evaluate("[pscustomobject]@{ A = [pscustomobject]@{ B = [pscustomobject]@{ C = 1 } } }");
            foreach (int depth in new[] { 1, 2, 5 })
            {
                byte[] payload = Encode(nested, PayloadFormat.CliXml, out _, depth);
                Assert.Equal(FastCliXmlTests.Serialize(nested, depth), FastCliXmlTests.Serialize(Encoding.UTF8.GetString(payload)));
            }
        });

        [Fact]
        public void JsonIsConvertToJsonCompressedAtTheDepth() => _engine.Run(() =>
        {
            PSObject record = _engine.Evaluate("[pscustomobject]@{ n = 1; s = 'x'; inner = [pscustomobject]@{ deeper = [pscustomobject]@{ v = 2 } } }");
            byte[] payload = Encode(record, PayloadFormat.Json, out MessageFormat wire, 1);
            Assert.Equal(MessageFormat.Json, wire);
            Assert.Equal("{\"n\":1,\"s\":\"x\",\"inner\":{\"deeper\":\"@{v=2}\"}}", Encoding.UTF8.GetString(payload));
            Assert.Equal("null", Encoding.UTF8.GetString(Encode(null, PayloadFormat.Json, out _)));
        });

        [Fact]
        public void JsonRoundTripsToAPSCustomObject() => _engine.Run(() =>
        {
            byte[] payload = Encode(_engine.Evaluate("[pscustomobject]@{ n = 1; s = 'x' }"), PayloadFormat.Json, out MessageFormat wire);
            object? decoded = Decode(_senders.FromPipe(wire, payload));
            var record = Assert.IsType<PSObject>(decoded);
            Assert.IsType<PSCustomObject>(record.BaseObject);
            Assert.Equal(1L, record.Properties["n"].Value);
            Assert.Equal("x", record.Properties["s"].Value);
        });

        [Fact]
        public void JsonArrayDecodesToItsItems() => _engine.Run(() =>
        {
            object? decoded = Decode(_senders.FromPipe(MessageFormat.Json, Encoding.UTF8.GetBytes("[1,\"two\"]")));
            var items = Assert.IsType<object[]>(decoded);
            Assert.Equal(2, items.Length);
            Assert.Equal(1L, PSObject.AsPSObject(items[0]).BaseObject);
            Assert.Equal("two", PSObject.AsPSObject(items[1]).BaseObject);
        });

        [Fact]
        public void InvalidJsonIsARuntimeException() => _engine.Run(() =>
        {
            // ConvertFrom-Json's terminating error; Receive-IpcMessage reports it as DecodeFailed.
            Assert.ThrowsAny<RuntimeException>(() => Decode(_senders.FromPipe(MessageFormat.Json, Encoding.UTF8.GetBytes("{not json"))));
        });

        [Fact]
        public void TextAndBytesDecodeAsThemselves()
        {
            Assert.Equal("héllo", Decode(_senders.FromPipe(MessageFormat.Text, Encoding.UTF8.GetBytes("héllo"))));
            Assert.Equal("a\uFFFDb", Decode(_senders.FromPipe(MessageFormat.Text, new byte[] { (byte)'a', 0xFF, (byte)'b' })));
            Assert.Equal(new byte[] { 0, 255 }, Decode(_senders.FromPipe(MessageFormat.Bytes, new byte[] { 0, 255 })));
            Assert.Equal(string.Empty, Decode(_senders.FromPipe(MessageFormat.Text, new byte[0])));
        }

        [Fact]
        public void CliXmlFromAPipePeerArrivesAsADeserializedObject() => _engine.Run(() =>
        {
            byte[] payload = Encode(_engine.Evaluate("[pscustomobject]@{ Name = 'web01'; Port = 8080 }"), PayloadFormat.Auto, out MessageFormat wire);
            var record = Assert.IsType<PSObject>(Decode(_senders.FromPipe(wire, payload)));
            Assert.Equal("Deserialized.System.Management.Automation.PSCustomObject", record.TypeNames[0]);
            Assert.Equal("web01", record.Properties["Name"].Value);
            Assert.Equal(8080, record.Properties["Port"].Value);
        });

        [Fact]
        public void CliXmlFromAPeerThatProvedTheSecretOverLoopbackIsDecoded() => _engine.Run(() =>
        {
            byte[] payload = Encode(new Hashtable { ["k"] = "v" }, PayloadFormat.Auto, out MessageFormat wire);
            var table = Assert.IsType<Hashtable>(PSObject.AsPSObject(Decode(_senders.FromTcpWithSecret(wire, payload))).BaseObject);
            Assert.Equal("v", table["k"]);
        });

        [Fact]
        public void CliXmlFromAnUnauthenticatedTcpPeerIsRefused() => _engine.Run(() =>
        {
            byte[] payload = Encode(new Hashtable { ["k"] = "v" }, PayloadFormat.Auto, out MessageFormat wire);
            IpcMessage message = _senders.FromUnauthenticatedTcp(wire, payload);
            // Receive-IpcMessage reports it as DecodeFailed; the bytes are never handed to the deserializer.
            var refusal = Assert.ThrowsAny<InvalidOperationException>(() => Decode(message));
            Assert.Contains("does not deserialize CliXml", refusal.Message);
            Assert.Contains(message.Sender.Name, refusal.Message);
        });

        [Fact]
        public void CliXmlFromAUdpPeerIsRefused() => _engine.Run(() =>
        {
            byte[] payload = Encode(42, PayloadFormat.Auto, out MessageFormat wire);
            var refusal = Assert.ThrowsAny<InvalidOperationException>(() => Decode(_senders.FromUdp(wire, payload)));
            Assert.Contains("does not deserialize CliXml", refusal.Message);
        });

        [Fact]
        public void TextFromAnUnauthenticatedPeerIsStillDecoded()
        {
            Assert.Equal("plain", Decode(_senders.FromUnauthenticatedTcp(MessageFormat.Text, Encoding.UTF8.GetBytes("plain"))));
            Assert.Equal("dgram", Decode(_senders.FromUdp(MessageFormat.Text, Encoding.UTF8.GetBytes("dgram"))));
        }

        [Fact]
        public void MalformedCliXmlFromATrustedPeerIsAnXmlException() => _engine.Run(() =>
        {
            // Receive-IpcMessage reports it as DecodeFailed and goes on with the next message.
            Assert.Throws<XmlException>(() => Decode(_senders.FromPipe(MessageFormat.CliXml, Encoding.UTF8.GetBytes("<Objs Version=\"1.1.0.1\""))));
        });

        [Fact]
        public void UnwrapLeavesRecordsWrappedAndUnwrapsEverythingElse() => _engine.Run(() =>
        {
            PSObject record = _engine.Evaluate("[pscustomobject]@{ A = 1 }");
            Assert.Same(record, PayloadCodec.Unwrap(record));
            Assert.Equal(5, PayloadCodec.Unwrap(PSObject.AsPSObject(5)));
            Assert.Null(PayloadCodec.Unwrap(null));
        });
    }
}
