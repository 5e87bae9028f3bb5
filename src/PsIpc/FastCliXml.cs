using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Management.Automation;
using System.Text;
using System.Xml;

namespace PsIpc
{
    /// <summary>
    /// Writes the CliXml that PSSerializer writes, for the most common record shape only: a
    /// [pscustomobject] whose members are all note properties holding null, string, bool, int, long,
    /// double, decimal, DateTime or Guid. PSSerializer spends ~45 us on such an object; this takes a few.
    /// Anything else (other types, nested objects, wrapped values, strings PowerShell would escape,
    /// -Depth 0) returns false and goes through PSSerializer, so fidelity is PSSerializer's by construction.
    /// A Pester test checks that both round-trip to the same Deserialized object.
    /// </summary>
    internal static class FastCliXml
    {
        private const string Header = "<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><Obj RefId=\"0\"><TN RefId=\"0\">";

        public static bool TryWrite(object? value, int depth, StringBuilder sb)
        {
            if (depth < 1 || !(value is PSObject pso) || !(pso.BaseObject is PSCustomObject)) return false;
            sb.Clear();
            sb.Append(Header);
            foreach (string typeName in pso.TypeNames)
            {
                if (!IsPlainName(typeName)) return false;
                sb.Append("<T>").Append(typeName).Append("</T>");
            }
            sb.Append("</TN><MS>");
            foreach (PSMemberInfo property in PropertiesOf(pso))
            {
                if (property.MemberType != PSMemberTypes.NoteProperty || !IsPlainName(property.Name)) return false;
                if (!TryWriteValue(property.Name, property.Value, sb)) return false;
            }
            sb.Append("</MS></Obj></Objs>");
            return true;
        }

        // The first look at a fresh PSObject's Properties costs ~14 us (it gathers type-table and adapted
        // members); its instance members alone cost ~1 us. They are the same list when the object's types add
        // no members. That is checked on the first object of each first type name, and again at most a second
        // later (type data added by Update-TypeData meanwhile shows then): one full look a second per type.
        private static readonly System.Reflection.PropertyInfo? InstanceMembersProperty =
            typeof(PSObject).GetProperty("InstanceMembers", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic);
        // Per first type name (and the rest of the type names, joined): whether instance members were the whole
        // list, and when that was last checked (Stopwatch ticks).
        private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, KeyValuePair<bool, long>> InstanceOnlyTypes =
            new System.Collections.Concurrent.ConcurrentDictionary<string, KeyValuePair<bool, long>>(StringComparer.Ordinal);

        private static System.Collections.Generic.IEnumerable<PSMemberInfo> PropertiesOf(PSObject pso)
        {
            string typeKey = string.Join("\n", pso.TypeNames);
            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            bool known = InstanceOnlyTypes.TryGetValue(typeKey, out KeyValuePair<bool, long> check)
                && now - check.Value < System.Diagnostics.Stopwatch.Frequency;
            if (InstanceMembersProperty != null && known && check.Key
                && InstanceMembersProperty.GetValue(pso) is System.Collections.Generic.IEnumerable<PSMemberInfo> instance)
            {
                return InstanceProperties(instance);
            }
            var all = new System.Collections.Generic.List<PSMemberInfo>(pso.Properties);
            if (InstanceMembersProperty != null && !known)
            {
                bool same = InstanceMembersProperty.GetValue(pso) is System.Collections.Generic.IEnumerable<PSMemberInfo> members
                    && SameMembers(all, InstanceProperties(members));
                InstanceOnlyTypes[typeKey] = new KeyValuePair<bool, long>(same, now);
            }
            return all;
        }

        // An object's own members minus the member sets (psobject, psbase...) and the pstypenames code property
        // PowerShell keeps there. Any other kind of property stays, and makes TryWrite take the PSSerializer path.
        private static System.Collections.Generic.IEnumerable<PSMemberInfo> InstanceProperties(System.Collections.Generic.IEnumerable<PSMemberInfo> members)
        {
            foreach (PSMemberInfo member in members)
            {
                if (member.MemberType == PSMemberTypes.MemberSet) continue;
                if (member.MemberType == PSMemberTypes.CodeProperty && string.Equals(member.Name, "pstypenames", StringComparison.OrdinalIgnoreCase)) continue;
                yield return member;
            }
        }

        private static bool SameMembers(System.Collections.Generic.List<PSMemberInfo> properties, System.Collections.Generic.IEnumerable<PSMemberInfo> instance)
        {
            int i = 0;
            foreach (PSMemberInfo member in instance)
            {
                if (i >= properties.Count || !ReferenceEquals(member, properties[i])) return false;
                i++;
            }
            return i == properties.Count;
        }

        private static bool TryWriteValue(string name, object value, StringBuilder sb)
        {
            if (value is PSObject wrapped)
            {
                // A value that came down a pipeline ($_ in ForEach-Object) is wrapped; PSSerializer writes it
                // as the bare value unless the wrapper carries members of its own.
                if (wrapped.BaseObject is PSCustomObject || InstanceMembersProperty == null) return false;
                if (!(InstanceMembersProperty.GetValue(wrapped) is System.Collections.Generic.IEnumerable<PSMemberInfo> members)) return false;
                foreach (PSMemberInfo unused in InstanceProperties(members)) return false;
                value = wrapped.BaseObject;
            }
            switch (value)
            {
                case null:
                    sb.Append("<Nil N=\"").Append(name).Append("\" />");
                    return true;
                case string s:
                    if (!IsPlain(s)) return false;
                    return Element(sb, "S", name, s);
                case bool b:
                    return Element(sb, "B", name, b ? "true" : "false");
                case int i:
                    return Element(sb, "I32", name, XmlConvert.ToString(i));
                case long l:
                    return Element(sb, "I64", name, XmlConvert.ToString(l));
                case double d:
                    return Element(sb, "Db", name, XmlConvert.ToString(d));
                case decimal m:
                    return Element(sb, "D", name, XmlConvert.ToString(m));
                case DateTime dt:
                    return Element(sb, "DT", name, XmlConvert.ToString(dt, XmlDateTimeSerializationMode.RoundtripKind));
                case Guid g:
                    return Element(sb, "G", name, g.ToString("D", CultureInfo.InvariantCulture));
                default:
                    return false; // PSObject-wrapped values, collections, other types: PSSerializer decides
            }
        }

        private static bool Element(StringBuilder sb, string tag, string name, string text)
        {
            sb.Append('<').Append(tag).Append(" N=\"").Append(name).Append("\">");
            foreach (char c in text)
            {
                switch (c)
                {
                    case '<': sb.Append("&lt;"); break;
                    case '>': sb.Append("&gt;"); break;
                    case '&': sb.Append("&amp;"); break;
                    default: sb.Append(c); break;
                }
            }
            sb.Append("</").Append(tag).Append('>');
            return true;
        }

        private const string Trailer = "</MS></Obj></Objs>";

        /// <summary>
        /// Reads back exactly the shape <see cref="TryWrite"/> writes (and PSSerializer writes for such a
        /// record): one [pscustomobject] of note properties with null, string, bool, int, long, double,
        /// decimal, DateTime or Guid values, no escapes beyond &amp;lt; &amp;gt; &amp;amp;. It builds what
        /// PSSerializer.Deserialize builds (type names prefixed "Deserialized.", note properties); anything
        /// else, down to a space, returns false and PSSerializer reads it. PSSerializer.Deserialize takes
        /// ~19 us for such a record; this a few.
        /// </summary>
        public static bool TryRead(string? xml, [NotNullWhen(true)] out object? value)
        {
            value = null;
            if (xml == null || !xml.StartsWith(Header, StringComparison.Ordinal) || !xml.EndsWith(Trailer, StringComparison.Ordinal)) return false;
            int at = Header.Length;
            int end = xml.Length - Trailer.Length;
            var result = new PSObject();
            result.TypeNames.Clear();
            while (Skip(xml, ref at, "<T>"))
            {
                int close = xml.IndexOf("</T>", at, StringComparison.Ordinal);
                if (close < 0) return false;
                string typeName = xml.Substring(at, close - at);
                if (!IsPlain(typeName) || typeName.IndexOf('<') >= 0 || typeName.IndexOf('&') >= 0) return false;
                result.TypeNames.Add("Deserialized." + typeName);
                at = close + 4;
            }
            if (!Skip(xml, ref at, "</TN><MS>")) return false;
            var names = new System.Collections.Generic.HashSet<string>(StringComparer.OrdinalIgnoreCase);
            try
            {
                while (at < end)
                {
                    if (!TryReadProperty(xml, ref at, end, out string? name, out object? propertyValue)) return false;
                    if (!names.Add(name)) return false; // a repeated name: let PSSerializer decide
                    result.Properties.Add(new PSNoteProperty(name, propertyValue));
                }
            }
            catch (FormatException) { return false; }
            catch (OverflowException) { return false; }
            catch (ExtendedTypeSystemException) { return false; } // a name that type data for Deserialized.* takes: PSSerializer decides
            if (at != end) return false;
            value = result;
            return true;
        }

        private static bool TryReadProperty(string xml, ref int at, int end, [NotNullWhen(true)] out string? name, out object? value)
        {
            name = null;
            value = null;
            if (!Skip(xml, ref at, "<")) return false;
            int space = xml.IndexOf(' ', at, Math.Min(4, end - at));
            if (space < 0) return false;
            string tag = xml.Substring(at, space - at);
            at = space;
            if (!Skip(xml, ref at, " N=\"")) return false;
            int quote = xml.IndexOf('"', at);
            if (quote < 0 || quote >= end) return false;
            name = xml.Substring(at, quote - at);
            if (name.Length == 0 || !IsPlain(name) || name.IndexOf('<') >= 0 || name.IndexOf('&') >= 0 || name.IndexOf('>') >= 0) return false;
            at = quote + 1;
            if (tag == "Nil") return Skip(xml, ref at, " />");
            if (!Skip(xml, ref at, ">")) return false;
            int lt = xml.IndexOf('<', at);
            if (lt < 0 || lt >= end) return false;
            string? text = Unescape(xml.Substring(at, lt - at));
            if (text == null) return false;
            at = lt;
            if (!Skip(xml, ref at, "</") || !Skip(xml, ref at, tag) || !Skip(xml, ref at, ">")) return false;
            switch (tag)
            {
                case "S": value = text; return true;
                case "B": value = XmlConvert.ToBoolean(text); return true;
                case "I32": value = XmlConvert.ToInt32(text); return true;
                case "I64": value = XmlConvert.ToInt64(text); return true;
                case "Db": value = XmlConvert.ToDouble(text); return true;
                case "D": value = XmlConvert.ToDecimal(text); return true;
                case "DT": value = XmlConvert.ToDateTime(text, XmlDateTimeSerializationMode.RoundtripKind); return true;
                case "G": value = XmlConvert.ToGuid(text); return true;
                default: return false;
            }
        }

        // The three entities TryWrite writes; any other '&', or text PowerShell would have escaped, is not ours.
        private static string? Unescape(string text)
        {
            if (!IsPlain(text) || text.IndexOf('>') >= 0) return null;
            if (text.IndexOf('&') < 0) return text;
            var sb = new StringBuilder(text.Length);
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                if (c != '&') { sb.Append(c); continue; }
                if (string.CompareOrdinal(text, i, "&lt;", 0, 4) == 0) { sb.Append('<'); i += 3; }
                else if (string.CompareOrdinal(text, i, "&gt;", 0, 4) == 0) { sb.Append('>'); i += 3; }
                else if (string.CompareOrdinal(text, i, "&amp;", 0, 5) == 0) { sb.Append('&'); i += 4; }
                else return null;
            }
            return sb.ToString();
        }

        private static bool Skip(string xml, ref int at, string expected)
        {
            if (string.CompareOrdinal(xml, at, expected, 0, expected.Length) != 0) return false;
            at += expected.Length;
            return true;
        }

        // A type or property name written as it is, in an element and in an attribute: plain, and nothing XML
        // would read as markup (PSSerializer escapes those; this leaves them to it).
        private static bool IsPlainName(string name) =>
            IsPlain(name) && name.IndexOf('&') < 0 && name.IndexOf('<') < 0 && name.IndexOf('>') < 0;

        // Text PowerShell writes unchanged: no control characters (it escapes them as _xHHHH_), no "_x"
        // (which it escapes so it cannot be read as such an escape), no surrogates or non-characters, and
        // no characters that need escaping inside an attribute. Anything else takes the PSSerializer path.
        private static bool IsPlain(string text)
        {
            if (text == null) return false;
            for (int i = 0; i < text.Length; i++)
            {
                char c = text[i];
                if (c < 0x20 || c >= 0xD800 || c == '"' || c == '\'') return false;
                if (c == '_' && i + 1 < text.Length && (text[i + 1] == 'x' || text[i + 1] == 'X')) return false;
            }
            return true;
        }
    }
}
