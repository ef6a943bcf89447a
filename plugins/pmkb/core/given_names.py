"""Common given names, for recognising people the knowledge base has not met yet.

Used only where a person is likely (the subject of a sentence, before a verb, after
"by", as a possessive) in root-cause analysis and failure subjects. Names that are
also common words or technology names (May, Will, Grant, Ruby, Cassandra, Aurora,
Athena, Jasmine, Loki, Iris, Django, Karma...) are left out on purpose.
"""

GIVEN_NAMES = frozenset("""
Aaron Abdul Abel Abigail  Adam Adele Adrian Adriana Ahmed Aiko Aisha Akira Alan Albert Alberto Alejandro Alex
Alexander Alexandra Alexei Alfonso Ali Alice Alicia Alina Alison Amanda Amir Amit Ana Anders Andre Andrea Andreas
Andrei Andres Andrew Andy Angela Anil Anita Anja Ankit Ann Anna Anne Anthony Anton Antonio Anya Arjun Arnav Arthur
Arun Asha Ashley Astrid Ayesha Barbara Bastian Beatriz Ben Benjamin Bernard Beth Bianca Bilal Bjorn Bo Bogdan
Boris Brandon Brenda Brian Bruno Bryan Camila Carl Carla Carlos Carmen Carol Caroline Catherine Cecilia Charles
Charlie Chen Chiara Chidi Chinedu Chloe Chris Christian Christina Christine Christopher Claire Clara Claudia
Colin Connor Craig Cristina Cy Dan Dana Daniel Daniela Danielle Dario David Deborah Deepak Denis Dennis Derek
Diana Diego Dimitri Dmitri Dmitry Dominik Donna Dylan Ebony Eduardo Elena Eli Elif Elijah Elisa Elizabeth Ella
Ellen Emeka Emil Emily Emma Enrique Eric Erik Erin Ethan Eva Evan Fabian Farid Fatima Felix Fernando Filip
Fiona Florian Francesca Francesco Francisco Frederik Gabriel Gabriela Gareth George Georgia Gerald Gina Giovanni
Giulia Gloria Gonzalo Gordon Greg Gregory Guillaume Gustavo Hamza Hana Hannah Hans Haruto Hassan Heather Hector
Helen Henrik Henry Hiroshi Holly  Ian Ibrahim Igor Ilya Imran Ines Ingrid Irina Isaac Isabel Isabella Ivan
Jack Jacob Jake James  Jana Janet Janice Jason Javier Jean Jeff Jeffrey Jennifer Jeremy Jerome Jessica Jiho
Jin Joan Joao Joe Joel Johan Johannes John Jonas Jonathan Jordan Jorge Jose Joseph Joshua Juan Julia Julian
Juliana Julie  Justin Kai Kamal Karen Karim Karin Karl Kate Katarina Katherine Kathryn Katie Kavya Keith Kelly
Ken Kenji Kenneth Kevin Khalid Kim Klaus Kofi Kwame Kyle Lakshmi Lars Laura Lauren Laurent Leila Lena Leon
Leonardo Lin Linda Lisa Liam Lorenzo Louis Lucas Lucia Luis Luisa Lukas Maciej Magnus Mahmoud Maja Manuel Marco
Marcus Margaret Maria Mariana Marie Marina Mario Marion Marisa Marta Martin Mary Mateo Mathias Matt Matteo
Matthew  Megan Mehmet Mei Melissa Mia Michael Michelle Miguel Mikael Mike Mikhail Milan  Ming Mohamed
Mohammed Monica Morgan Nadia Nancy Naomi Natalia Natasha Nathan Neha Nicholas Nick Nicola Nicolas Nikhil Nikita
Nina Noah Noor Nora Ola Olga Oliver Olivia Omar Oscar Pablo Paolo Patricia Patrick Paul Paula Pedro Peter Petra
Philip Pierre Pietro Pooja Prakash Priya Rachel Rafael Rahul Raj Rajesh Ramon Raquel Ravi Rebecca Ricardo
Richard Rita Robert Roberto Robin Rohan Roman Ronald Rosa Ruth Ryan Sabrina Sahil Sam Samantha Samir Samuel Sandra
Sanjay Sara Sarah Sebastian Sergei Sergio Shanti Sharon Shirin Simon Simone Sina Sofia Sophia Sophie Stefan
Stefano Stephanie Stephen Steve Steven Sunil Susan Suresh Sven Takeshi Tamara Tanya Teresa Thomas Tim Timothy
Tina Tobias Tom Tomas Tomasz Tony Tyler Uma Valentina Vanessa Vera Victor Victoria Vijay Vikram Vincent Viktor
Vivek Walter Wei William Xavier Xin Yara Yasmin Yuki Yusuf Yuri Zara Zeynep Zhang Zoe Zoltan
""".split())
